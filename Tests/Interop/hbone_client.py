#!/usr/bin/env python3
"""An HBONE client written with Python's ssl and h2, independent of swift-mesh.

Opens TLS 1.3 with ALPN h2 and a client SVID (no SNI), checks the server's SPIFFE
URI SAN, sends one request on stream 1 and prints what happened:
  peer <uri>          the server's verified SPIFFE ID
  status <code>       the response status
  echo <text>         (200 only) the bytes echoed back after we half-closed
With --bulk N it instead sends N pseudo-random bytes within the server's flow-control
windows (every third frame padded), reads the echo concurrently, and prints
  bulk <received> <sha256 of what was sent> <sha256 of what came back> <ended|reset-CODE|goaway-CODE|eof>
h2 itself refuses frames beyond the windows it advertised (65,535 bytes by default).
With --violate MODE it breaks HTTP/2 on purpose after the 200 (window: DATA without
regard for flow control; padding: a padded DATA frame whose padding is longer than
the frame) or right away (preface: garbage instead of the connection preface), then
reads until the server closes and prints
  violation goaway <error code>      or      violation closed
The flood modes attack the connection right after the preface and print, before that,
  flood sent <frames> of <planned>
(the GOAWAY line then also names the last stream the server processed: "last-stream N")
rapid-reset: CONNECT then RST_STREAM(CANCEL) on stream after stream (CVE-2023-44487);
continuation: one HEADERS without END_HEADERS, then 16 KiB CONTINUATION frames that
never end the header block (the 2024 CONTINUATION flood).
"""
import struct
import hashlib
import random
import select
import argparse
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import hpack


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--connect", required=True, help="host:port of the HBONE server")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--expect-id", required=True)
    p.add_argument("--authority", required=True)
    p.add_argument("--method", default="CONNECT")
    p.add_argument("--send", default="hello from python h2")
    p.add_argument("--early", action="store_true", help="send the bytes (and END_STREAM) right behind the CONNECT, before the 200")
    p.add_argument("--bulk", type=int, default=0, help="send this many bytes (flow-controlled, some frames padded) and hash the echo")
    p.add_argument("--violate", choices=["window", "padding", "preface", "rapid-reset", "continuation"], help="break HTTP/2 on purpose and report how the server ends the connection")
    a = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["h2"])
    host, port = a.connect.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=20)
    tls = ctx.wrap_socket(raw, server_hostname=None)
    if tls.selected_alpn_protocol() != "h2" or tls.version() != "TLSv1.3":
        print(f"bad negotiation {tls.selected_alpn_protocol()} {tls.version()}", flush=True)
        return 2
    uris = [v for k, v in tls.getpeercert().get("subjectAltName", ()) if k == "URI"]
    print(f"peer {' '.join(uris)}", flush=True)
    if uris != [a.expect_id]:
        print("unexpected server identity", flush=True)
        return 3

    if a.violate == "preface":
        tls.sendall(b"GET / HTTP/1.1\r\nHost: nope\r\n\r\n" + bytes(64))
        return await_end(None, tls)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    if a.violate in ("rapid-reset", "continuation"):
        tls.sendall(conn.data_to_send())
        return flood(tls, a.violate, a.authority)
    if a.method == "CONNECT":
        headers = [(":method", "CONNECT"), (":authority", a.authority),
                   ("forwarded", 'for="192.0.2.10:41000"'), ("baggage", "k8s.namespace.name=python"),
                   ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    else:
        headers = [(":method", a.method), (":scheme", "https"), (":path", "/"), (":authority", a.authority)]
    conn.send_headers(1, headers)
    if a.bulk:
        tls.sendall(conn.data_to_send())
        return bulk(conn, tls, a.bulk)
    if a.violate:
        tls.sendall(conn.data_to_send())
        return violate(conn, tls, a.violate)
    if a.early:
        conn.send_data(1, a.send.encode(), end_stream=True)
    tls.sendall(conn.data_to_send())

    echoed = b""
    status = None
    done = False
    # An overall bound: the server's keepalive PINGs would keep a per-recv timeout from ever firing.
    deadline = time.monotonic() + 20
    while not done:
        if time.monotonic() > deadline:
            print("timed out", flush=True)
            break
        data = tls.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers)[":status"]
                print(f"status {status}", flush=True)
                if status == "200":
                    if not a.early:
                        conn.send_data(1, a.send.encode(), end_stream=True)
                else:
                    done = True
            elif isinstance(event, h2.events.DataReceived):
                echoed += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, 1)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        tls.sendall(conn.data_to_send())
    if status == "200":
        print(f"echo {echoed.decode()}", flush=True)
    conn.close_connection()
    tls.sendall(conn.data_to_send())
    tls.close()
    return 0


def raw_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload


def flood(tls, mode: str, authority: str) -> int:
    """Sends the flood as raw frames, stopping when the server stops taking them."""
    encoder = hpack.Encoder()
    connect = [(":method", "CONNECT"), (":authority", authority)]
    frames = []
    if mode == "rapid-reset":
        planned = 20000
        for index in range(planned // 2):
            stream = 2 * index + 1
            frames.append(raw_frame(1, 0x4, stream, encoder.encode(connect)))  # HEADERS, END_HEADERS
            frames.append(raw_frame(3, 0, stream, struct.pack("!I", 8)))  # RST_STREAM, CANCEL
    else:
        block = encoder.encode(connect + [("x-flood", "a" * (64 << 20))], huffman=False)
        chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        planned = len(chunks)
        frames.append(raw_frame(1, 0, 1, chunks[0]))  # HEADERS without END_HEADERS
        frames += [raw_frame(9, 0, 1, chunk) for chunk in chunks[1:]]  # CONTINUATION, never END_HEADERS
    sent = 0
    tls.settimeout(10)
    try:
        for start in range(0, len(frames), 64):
            tls.sendall(b"".join(frames[start:start + 64]))
            sent = min(start + 64, len(frames))
    except (OSError, ssl.SSLError):
        pass  # the server has closed
    print(f"flood sent {sent} of {planned}", flush=True)
    return await_end(None, tls)


def await_end(conn, tls) -> int:
    """Reads until the server closes; reports its GOAWAY error code if one came."""
    deadline = time.monotonic() + 30
    raw = b""
    while time.monotonic() < deadline:
        try:
            data = tls.recv(65536)
        except (ConnectionError, ssl.SSLError):
            data = b""
        if not data:
            break
        raw += data
        if conn is not None:
            try:
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ConnectionTerminated):
                        print(f"violation goaway {event.error_code}", flush=True)
                        return 0
            except Exception:
                conn = None  # our own h2 state no longer matches what we sent: scan the raw frames below
    # Without h2 (or after it gave up): the last GOAWAY among the frames after the server's preface.
    index = raw.find(b"\x00\x00\x08\x07\x00")
    if index >= 0 and len(raw) >= index + 17:
        last_stream, code = struct.unpack('!II', raw[index + 9:index + 17])
        print(f"violation goaway {code} last-stream {last_stream & 0x7FFFFFFF}", flush=True)
    else:
        print("violation closed", flush=True)
    return 0


def violate(conn, tls, mode: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        data = tls.recv(65536)
        if not data:
            print("closed before the answer", flush=True)
            return 6
        if any(isinstance(e, h2.events.ResponseReceived) for e in conn.receive_data(data)):
            break
        tls.sendall(conn.data_to_send())
    tls.sendall(conn.data_to_send())
    print("status 200", flush=True)
    if mode == "padding":
        tls.sendall(raw_frame(0, 0x8, 1, bytes([9]) + b"abc"))
    else:
        # DATA far beyond the stream window, ignoring flow control (the upstream does not read).
        chunk = raw_frame(0, 0, 1, bytes(16384))
        try:
            tls.settimeout(5)
            for _ in range((64 << 20) // 16384):
                tls.sendall(chunk)
        except (OSError, ssl.SSLError):
            pass  # the server has already closed
    return await_end(conn, tls)


def bulk(conn, tls, total: int) -> int:
    payload = random.Random(7).randbytes(total)
    received = bytearray()
    sent = 0
    frames = 0
    established = ended = False
    how = "eof"
    deadline = time.monotonic() + 120
    while not ended:
        if time.monotonic() > deadline:
            print(f"timed out after sending {sent} and receiving {len(received)}", flush=True)
            return 4
        while established and sent < total:
            room = min(conn.local_flow_control_window(1), conn.max_outbound_frame_size, 16384)
            padded = frames % 3 == 0
            size = min(room - 8 if padded else room, total - sent)
            if size <= 0:
                break
            conn.send_data(1, payload[sent:sent + size], pad_length=7 if padded else None)
            sent += size
            frames += 1
            if sent == total:
                conn.end_stream(1)
        tls.sendall(conn.data_to_send())
        if not tls.pending():
            select.select([tls], [], [], 0.5)
        try:
            tls.setblocking(False)
            data = tls.recv(262144)
        except ssl.SSLWantReadError:
            continue
        finally:
            tls.setblocking(True)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers)[":status"]
                print(f"status {status}", flush=True)
                if status != "200":
                    return 5
                established = True
            elif isinstance(event, h2.events.DataReceived):
                received += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, 1)
            elif isinstance(event, h2.events.StreamEnded):
                ended = True
                how = "ended"
            elif isinstance(event, h2.events.StreamReset):
                ended = True
                how = f"reset-{event.error_code}"
            elif isinstance(event, h2.events.ConnectionTerminated):
                ended = True
                how = f"goaway-{event.error_code}"
        tls.sendall(conn.data_to_send())
    print(f"bulk {len(received)} {hashlib.sha256(payload).hexdigest()} {hashlib.sha256(received).hexdigest()} {how}", flush=True)
    conn.close_connection()
    tls.sendall(conn.data_to_send())
    tls.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
