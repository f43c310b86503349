#!/usr/bin/env python3
"""An HBONE server written with Python's ssl and h2, independent of swift-mesh.

Requires TLS 1.3, ALPN h2 and a client certificate from the given CA; answers
each CONNECT with 200 and echoes the stream's bytes until the client ends it,
within the client's flow-control windows (h2 refuses to send beyond them), every
third DATA frame padded with --pad.
Prints "listening <port>", then per stream the client's SPIFFE ID and headers.
Serves `--connections` connections, then exits.
"""
import argparse
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events


def flush_echo(conn, pending: dict, ending: set, pad: bool, frames: list) -> None:
    """Sends what the windows allow of each stream's pending echo; ends streams whose client ended and whose echo is out."""
    for stream_id in list(pending):
        data = pending[stream_id]
        while data:
            padded = pad and frames[0] % 3 == 0
            room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            size = min(room - 8 if padded else room, len(data))
            if size <= 0:
                break
            conn.send_data(stream_id, bytes(data[:size]), pad_length=7 if padded else None)
            del data[:size]
            frames[0] += 1
        if not data and stream_id in ending:
            conn.end_stream(stream_id)
            ending.discard(stream_id)
            del pending[stream_id]


def serve(tls: ssl.SSLSocket, pad: bool) -> None:
    uris = [v for k, v in tls.getpeercert().get("subjectAltName", ()) if k == "URI"]
    print(f"client {' '.join(uris)} alpn {tls.selected_alpn_protocol()} {tls.version()}", flush=True)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    pending: dict = {}
    ending: set = set()
    frames = [0]
    while True:
        data = tls.recv(65536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                headers = dict(event.headers)
                print(f"request method={headers.get(':method')} authority={headers.get(':authority')} "
                      f"forwarded={headers.get('forwarded')} baggage={headers.get('baggage')} "
                      f"traceparent={headers.get('traceparent')}", flush=True)
                status = "200" if headers.get(":method") == "CONNECT" else "400"
                conn.send_headers(event.stream_id, [(":status", status)], end_stream=status != "200")
                if status == "200":
                    pending[event.stream_id] = bytearray()
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_id in pending:
                    pending[event.stream_id] += event.data
            elif isinstance(event, h2.events.StreamEnded):
                ending.add(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                tls.sendall(conn.data_to_send())
                return
        flush_echo(conn, pending, ending, pad, frames)
        tls.sendall(conn.data_to_send())


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--pad", action="store_true", help="pad every third DATA frame")
    a = p.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["h2"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    print(f"listening {listener.getsockname()[1]}", flush=True)
    for _ in range(a.connections):
        raw, _ = listener.accept()
        raw.settimeout(30)
        try:
            with ctx.wrap_socket(raw, server_side=True) as tls:
                serve(tls, a.pad)
        except (ssl.SSLError, OSError) as error:
            print(f"connection error {error}", flush=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
