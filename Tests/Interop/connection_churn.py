"""Short connections through whatever path the host routes: WORKERS threads
each open a TCP connection to HOST:PORT, send an HTTP/1.0 GET, read the
response to its end and close, COUNT times in all. Prints
"ok N failed F" and the first few errors; exits 0 (the caller judges).

usage: connection_churn.py HOST PORT COUNT WORKERS"""
import socket
import sys
import threading

host, port, count, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lock = threading.Lock()
state = {"next": 0, "ok": 0, "failed": 0, "errors": []}


def worker():
    while True:
        with lock:
            if state["next"] >= count:
                return
            state["next"] += 1
        try:
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(b"GET /churn HTTP/1.0\r\nHost: churn\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            good = data.startswith(b"HTTP/1.0 ")
            error = None if good else f"unexpected answer {data[:40]!r}"
        except OSError as e:
            good, error = False, repr(e)
        with lock:
            if good:
                state["ok"] += 1
            else:
                state["failed"] += 1
                if len(state["errors"]) < 5:
                    state["errors"].append(error)


threads = [threading.Thread(target=worker) for _ in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"ok {state['ok']} failed {state['failed']}")
for e in state["errors"]:
    print("error", e)
