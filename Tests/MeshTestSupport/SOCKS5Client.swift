import Foundation

/// A SOCKS5 client (Python, so not our code), optionally bound to `source`:
/// CONNECT host:port and print `reply N`; on success send `payload`, half-close
/// and print everything received; otherwise print `closed` or `open` (whether
/// the proxy closed the connection after its refusal).
public func socks5Connect(socksPort: Int, host: String, port: Int, payload: String, from source: String? = nil) async throws -> Interop.Output {
    try await Interop.run("/usr/bin/env", ["python3", "-c", """
        import socket, struct, sys
        s = socket.socket(); s.settimeout(20)
        \(source.map { "s.bind((\"\($0)\", 0))" } ?? "")
        s.connect(("127.0.0.1", \(socksPort)))
        s.sendall(b"\\x05\\x01\\x00")
        assert s.recv(2) == b"\\x05\\x00"
        s.sendall(b"\\x05\\x01\\x00\\x01" + socket.inet_aton("\(host)") + struct.pack("!H", \(port)))
        reply = b""
        while len(reply) < 10 and (chunk := s.recv(10 - len(reply))): reply += chunk
        print("reply", reply[1])
        if reply[1] == 0:
            s.sendall(b"\(payload)"); s.shutdown(socket.SHUT_WR)
            data = b""
            while (chunk := s.recv(65536)): data += chunk
            print(data.decode())
        else:
            print("closed" if s.recv(1) == b"" else "open")
        """])
}

/// `count` SOCKS5 connections to host:port one after another from one Python process,
/// each sending `payload`, half-closing and reading the echo; prints "ok N" (N echoed
/// in full) and the first failure, if any.
public func socks5ConnectMany(socksPort: Int, host: String, port: Int, count: Int, payload: String) async throws -> Interop.Output {
    try await Interop.run("/usr/bin/env", ["python3", "-c", """
        import socket, struct, sys
        ok = 0
        for i in range(\(count)):
            try:
                s = socket.create_connection(("127.0.0.1", \(socksPort)), timeout=20)
                s.sendall(b"\\x05\\x01\\x00")
                assert s.recv(2) == b"\\x05\\x00"
                s.sendall(b"\\x05\\x01\\x00\\x01" + socket.inet_aton("\(host)") + struct.pack("!H", \(port)))
                reply = b""
                while len(reply) < 10 and (chunk := s.recv(10 - len(reply))): reply += chunk
                assert reply[1] == 0, f"reply {reply[1]}"
                s.sendall(b"\(payload)"); s.shutdown(socket.SHUT_WR)
                data = b""
                while (chunk := s.recv(65536)): data += chunk
                s.close()
                if data == b"\(payload)": ok += 1
            except Exception as error:
                print(f"connection {i}: {error!r}")
                break
        print("ok", ok)
        """])
}
