import Foundation

/// Python (so not our code) for a SOCKS5 client: `socks5(source)` connects to the proxy
/// (bound to `source` if given), CONNECTs to host:port and returns the socket and the
/// reply code; `exchange(s)` sends `payload`, half-closes and returns all it reads back.
private func socks5Python(socksPort: Int, host: String, port: Int, payload: String) -> String {
    """
    import socket, struct, sys
    def socks5(source=None):
        s = socket.socket(); s.settimeout(20)
        if source: s.bind((source, 0))
        s.connect(("127.0.0.1", \(socksPort)))
        s.sendall(b"\\x05\\x01\\x00")
        assert s.recv(2) == b"\\x05\\x00"
        s.sendall(b"\\x05\\x01\\x00\\x01" + socket.inet_aton("\(host)") + struct.pack("!H", \(port)))
        reply = b""
        while len(reply) < 10 and (chunk := s.recv(10 - len(reply))): reply += chunk
        return s, reply[1]
    def exchange(s):
        s.sendall(b"\(payload)"); s.shutdown(socket.SHUT_WR)
        data = b""
        while (chunk := s.recv(65536)): data += chunk
        return data

    """
}

/// A SOCKS5 client (Python, so not our code), optionally bound to `source`:
/// CONNECT host:port and print `reply N`; on success send `payload`, half-close
/// and print everything received; otherwise print `closed` or `open` (whether
/// the proxy closed the connection after its refusal).
public func socks5Connect(socksPort: Int, host: String, port: Int, payload: String, from source: String? = nil) async throws -> Interop.Output {
    try await Interop.run("/usr/bin/env", ["python3", "-c", socks5Python(socksPort: socksPort, host: host, port: port, payload: payload) + """
        s, reply = socks5(\(source.map { "\"\($0)\"" } ?? "None"))
        print("reply", reply)
        if reply == 0:
            print(exchange(s).decode())
        else:
            print("closed" if s.recv(1) == b"" else "open")
        """])
}

/// `count` SOCKS5 connections to host:port one after another from one Python process,
/// each sending `payload`, half-closing and reading the echo; prints "ok N" (N echoed
/// in full) and the first failure, if any.
public func socks5ConnectMany(socksPort: Int, host: String, port: Int, count: Int, payload: String) async throws -> Interop.Output {
    try await Interop.run("/usr/bin/env", ["python3", "-c", socks5Python(socksPort: socksPort, host: host, port: port, payload: payload) + """
        ok = 0
        for i in range(\(count)):
            try:
                s, reply = socks5()
                assert reply == 0, f"reply {reply}"
                if exchange(s) == b"\(payload)": ok += 1
                s.close()
            except Exception as error:
                print(f"connection {i}: {error!r}")
                break
        print("ok", ok)
        """])
}
