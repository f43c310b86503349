"""A stand-in upstream resolver for DNS tests: a UDP DNS server (stdlib only)
that answers every A query with 203.0.113.7, or with `--silent` never answers,
and prints the names it was asked.

usage: dns_stub_resolver.py [--silent] [HOST [PORT]]   (default 127.0.0.1, port 0)
Prints "PORT <n>" once bound."""
import socket
import sys

args = [a for a in sys.argv[1:] if a != "--silent"]
silent = "--silent" in sys.argv[1:]
host = args[0] if args else "127.0.0.1"
port = int(args[1]) if len(args) > 1 else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, port))
print("PORT", s.getsockname()[1], flush=True)
while True:
    q, a = s.recvfrom(4096)
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
        i += 1 + q[i]
    print("ASKED", ".".join(labels), flush=True)
    if silent or i + 5 > len(q):
        continue
    r = q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + q[12:i + 5]
    s.sendto(r + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([203, 0, 113, 7]), a)
