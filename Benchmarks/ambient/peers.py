#!/usr/bin/env python3
"""Peers for scripts/bench ambient, run inside the lab's pods (ip netns exec).
The echo server, the iperf3 result and RSS readers are Benchmarks/hbone/peers.py's.

  peers.py pingpong N SIZE HOST PORT       SIZE-byte ping-pong over one connection, prints "p50_us p99_us"
  peers.py connrate SECONDS CONC HOST PORT CONC processes each loop: connect, send 1 KiB, read the
                                           1 KiB echo, close; prints "conns_per_s ok failed p50_us p99_us"
                                           (per-connection time: connect to close; the first error of each
                                           process goes to stderr)
  peers.py hold N HOST PORT                opens N connections, each echoes 1 byte, prints "open N, F failed
                                           attempts" (a failed one is replaced, up to 10), holds them idle
                                           until stdin reaches EOF
  peers.py cpu PID...                      utime+stime of the PIDs summed, in clock ticks
  peers.py bytes FILE                      bytes received in an iperf3 -J result
"""
import multiprocessing, os, socket, sys, time


def connect(host, port, timeout=10):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s, n):
    got = 0
    view = bytearray(n)
    mv = memoryview(view)
    while got < n:
        k = s.recv_into(mv[got:], n - got)
        if k == 0:
            raise ConnectionError("closed early")
        got += k
    return bytes(view)


def connrate_worker(start, deadline, host, port, out):
    payload = b"y" * 1024
    time.sleep(max(0.0, start - time.monotonic()))
    ok = failed = 0
    samples = []
    while time.monotonic() < deadline:
        t0 = time.perf_counter_ns()
        try:
            s = connect(host, port)
            s.sendall(payload)
            if recv_exactly(s, 1024) != payload:
                raise ConnectionError("bad echo")
            s.close()
        except OSError as error:
            if failed == 0:
                print(f"connrate: {host}:{port}: {error!r}", file=sys.stderr, flush=True)  # the first failure of this worker
            failed += 1
            continue
        samples.append((time.perf_counter_ns() - t0) / 1000)
        ok += 1
    out.put((ok, failed, samples))


def main():
    cmd = sys.argv[1]
    if cmd == "pingpong":
        n, size, host, port = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
        payload = b"x" * size
        s = connect(host, port)
        samples = []
        for i in range(n + 100):  # the first 100 warm up
            t0 = time.perf_counter_ns()
            s.sendall(payload)
            if recv_exactly(s, size) != payload:
                raise SystemExit("pingpong: bad echo")
            if i >= 100:
                samples.append((time.perf_counter_ns() - t0) / 1000)
        s.close()
        samples.sort()
        print(f"{samples[len(samples) // 2]:.0f} {samples[int(len(samples) * 0.99)]:.0f}")
    elif cmd == "connrate":
        seconds, conc, host, port = float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
        out = multiprocessing.Queue()
        start = time.monotonic() + 0.5  # every worker starts at once, after all are forked
        deadline = start + seconds
        workers = [multiprocessing.Process(target=connrate_worker, args=(start, deadline, host, port, out)) for _ in range(conc)]
        for w in workers:
            w.start()
        results = [out.get() for _ in workers]
        for w in workers:
            w.join()
        ok = sum(r[0] for r in results)
        failed = sum(r[1] for r in results)
        samples = sorted(x for r in results for x in r[2])
        if not samples:
            raise SystemExit(f"connrate: no connection succeeded ({failed} failed)")
        print(f"{ok / seconds:.0f} {ok} {failed} {samples[len(samples) // 2]:.0f} {samples[int(len(samples) * 0.99)]:.0f}")
    elif cmd == "hold":
        n, host, port = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        held = []
        failed = 0
        while len(held) < n:
            try:
                s = connect(host, port)
                s.sendall(b"x")  # one round trip proves the connection is spliced end to end
                if s.recv(1) != b"x":
                    raise ConnectionError("bad echo")
            except OSError as error:
                failed += 1  # counted and reported, and another connection takes its place
                print(f"hold: {host}:{port}: {error!r}", file=sys.stderr, flush=True)
                if failed > 10:
                    raise SystemExit(f"hold: {failed} connections failed")
                continue
            held.append(s)
        print(f"open {len(held)}, {failed} failed attempts", flush=True)
        sys.stdin.read()
    elif cmd == "cpu":
        total = 0
        for pid in sys.argv[2:]:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        print(total)
    elif cmd == "bytes":
        import json
        with open(sys.argv[2]) as f:
            print(json.load(f)["end"]["sum_received"]["bytes"])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
