#!/usr/bin/env python3
"""Peers for scripts/bench hbone (loopback only).

  peers.py echo HOST PORT                  asyncio echo server
  peers.py pingpong N HOST PORT [SOCKS]    1-byte ping-pong, prints "p50_us p99_us"
                                           (SOCKS = socks5 port on 127.0.0.1: CONNECT to HOST:PORT through it)
  peers.py hold N HOST PORT SOCKS          opens N idle tunnels through SOCKS5, prints "open N", waits for stdin EOF
  peers.py iperf FILE                      received bits/s from an iperf3 -J result
  peers.py rss PID                         VmRSS of PID in KiB
"""
import asyncio, json, socket, struct, sys, time


def socks_connect(socks_port, host, port):
    s = socket.create_connection(("127.0.0.1", socks_port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        raise SystemExit("socks: bad method reply")
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack("!H", port))
    reply = b""
    while len(reply) < 10:
        chunk = s.recv(10 - len(reply))
        if not chunk:
            raise SystemExit("socks: closed during reply")
        reply += chunk
    if reply[1] != 0:
        raise SystemExit(f"socks: reply {reply[1]}")
    return s


def main():
    cmd = sys.argv[1]
    if cmd == "echo":
        host, port = sys.argv[2], int(sys.argv[3])

        async def handle(reader, writer):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            writer.close()

        async def serve():
            server = await asyncio.start_server(handle, host, port, backlog=4096)
            print("echo ready", flush=True)
            await server.serve_forever()

        asyncio.run(serve())
    elif cmd == "pingpong":
        n, host, port = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        if len(sys.argv) > 5:
            s = socks_connect(int(sys.argv[5]), host, port)
        else:
            s = socket.create_connection((host, port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for i in range(n + 100):  # the first 100 warm up
            t0 = time.perf_counter_ns()
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise SystemExit("pingpong: bad echo")
            if i >= 100:
                samples.append((time.perf_counter_ns() - t0) / 1000)
        s.close()
        samples.sort()
        print(f"{samples[len(samples) // 2]:.0f} {samples[int(len(samples) * 0.99)]:.0f}")
    elif cmd == "hold":
        n, host, port, socks_port = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        held = []
        for _ in range(n):
            s = socks_connect(socks_port, host, port)
            s.sendall(b"x")  # one round trip proves the tunnel is spliced end to end
            if s.recv(1) != b"x":
                raise SystemExit("hold: bad echo")
            held.append(s)
        print(f"open {len(held)}", flush=True)
        sys.stdin.read()
    elif cmd == "iperf":
        with open(sys.argv[2]) as f:
            result = json.load(f)
        print(f"{result['end']['sum_received']['bits_per_second']:.0f}")
    elif cmd == "rss":
        with open(f"/proc/{sys.argv[2]}/status") as f:
            print(next(l.split()[1] for l in f if l.startswith("VmRSS:")))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
