#!/usr/bin/env python3
"""An ADS management server on Envoy's generated types (xds-protos) and grpcio,
independent of swift-mesh, driven by line commands on stdin. XDSClient interop
tests use it to check swift-mesh's ADS client (SotW and delta) against a server
it did not write. Serves Listener and Cluster.

Usage: xds_ads_server.py --port 0   (127.0.0.1, plaintext, 0 = free port); prints
`LISTENING <port>`. Empty fields print as "-"; lists are comma separated; T is
Listener|Cluster (commands also accept any case or the full type URL).

Commands, each answered `OK <command words>` once applied and the responses are
queued on every open stream (`ERROR <message>` if malformed):
  cluster NAME [connect_timeout_seconds]  upsert an EDS-over-ADS Cluster (default 5)
  listener NAME              upsert a Listener on 127.0.0.1:<10000 + crc32(NAME) % 10000>
  remove cluster|listener NAME
  garbage T                  one response whose only resource is an Any of T with bytes
                             ff ff ff (delta: Resource name "garbage", version "g1")
  duplicate cluster NAME     one response holding two different Clusters named NAME
  close                      end all streams with UNAVAILABLE (OK once they ended)
  quit                       stop, print `OK quit`, exit 0 (also on stdin EOF)
Identical upserts and removing a missing name change and push nothing.
garbage/duplicate go to every stream subscribed to the type.

Events:
  STREAM sotw|delta node=<id>       first request on a new stream
  STREAM-END sotw|delta node=<id>   the stream ended (any reason)
  REQUEST sotw type=T version=V nonce=N names=A,B error=MSG
  REQUEST delta type=T nonce=N subscribe=A,B unsubscribe=C initial=A:v1,B:v2 error=MSG
  after a SotW request, exactly one of:
    SUBSCRIBE T <sub>   first request for T or resource_names changed; a response follows
    STALE T <nonce>     nonce is not the last one sent for T on this stream: ignored
    NACK T <message>    error_detail set: nothing is resent until the next change
    ACK T <version>
  after a delta request: `NACK T <message>` or `ACK T <nonce>` if response_nonce is
    set, then `SUBSCRIBE T <sub>` if it is the first request for T or (un)subscribes.
  <sub> is "*" (wildcard) and/or the subscribed names: "*", "a,b", "*,a".
  SENT sotw type=T version=V nonce=N names=A,B
  SENT delta type=T nonce=N resources=A:v1,B:v2 removed=C
SotW: version_info is a per-type counter bumped by every change or push; each
response holds all subscribed resources that exist. Wildcard: "*" in names, or
empty names on the first request (kept while later requests stay empty).
Delta: version = first 12 hex of sha256(serialized resource), stable across
restarts. The first request for a type always gets a response (maybe empty);
current initial_resource_versions are not resent; names the client has that no
longer exist, and newly subscribed names that do not exist, go to removed_resources.
"""
import argparse
import hashlib
import itertools
import queue
import sys
import threading
import zlib
from concurrent import futures

import grpc
from google.protobuf import any_pb2, duration_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
TYPES = {"listener": LISTENER, "cluster": CLUSTER}
CLOSE = object()  # stream sentinel: end with UNAVAILABLE (None: end with OK)
LOCK = threading.RLock()  # guards all state and keeps event lines ordered
NONCES = itertools.count(1)


def emit(*words):
    with LOCK:  # one whole line at a time, whichever thread prints
        sys.stdout.write(" ".join(str(w) for w in words) + "\n")
        sys.stdout.flush()


def short(type_url):
    return type_url.rsplit(".", 1)[-1] or "-"


def full_type(word):
    return TYPES.get(word.lower(), word)


def fmt(items):
    return ",".join(items) or "-"


def one_line(text):
    return " ".join(text.split()) or "-"


def pack(message):
    packed = any_pb2.Any()
    packed.Pack(message, deterministic=True)
    return packed


def content_version(packed):
    return hashlib.sha256(packed.value).hexdigest()[:12]


def make_cluster(name, timeout):
    eds = config_source_pb2.ConfigSource(ads=config_source_pb2.AggregatedConfigSource(),
                                         resource_api_version=config_source_pb2.V3)
    return pack(cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS,
                                    connect_timeout=duration_pb2.Duration(seconds=timeout),
                                    eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=eds)))


def make_listener(name):
    socket = address_pb2.SocketAddress(address="127.0.0.1", port_value=10000 + zlib.crc32(name.encode()) % 10000)
    return pack(listener_pb2.Listener(name=name, address=address_pb2.Address(socket_address=socket)))


class Subscription:
    """One stream's view of one type: what it asked for and what it was sent."""

    def __init__(self):
        self.wildcard, self.legacy, self.names = False, True, set()
        self.nonce = None  # last nonce sent for this type on this stream
        self.known = {}  # delta: name -> version the client has (sent, or initial_resource_versions)

    def wants(self, name):
        return self.wildcard or name in self.names

    def describe(self):
        return fmt((["*"] if self.wildcard else []) + sorted(self.names))


class Stream:
    def __init__(self, kind):
        self.kind, self.node = kind, None
        self.out, self.subs, self.done = queue.Queue(), {}, threading.Event()


class ADSServer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self):
        self.resources = {LISTENER: {}, CLUSTER: {}}  # type -> name -> Any
        self.versions = {LISTENER: 0, CLUSTER: 0}  # SotW version_info counters
        self.streams = []

    # --- gRPC methods -------------------------------------------------------
    def StreamAggregatedResources(self, request_iterator, context):
        return self._serve("sotw", self._on_sotw, request_iterator, context)

    def DeltaAggregatedResources(self, request_iterator, context):
        return self._serve("delta", self._on_delta, request_iterator, context)

    def _serve(self, kind, handle, request_iterator, context):
        stream = Stream(kind)
        with LOCK:
            self.streams.append(stream)
        context.add_callback(lambda: stream.out.put(None))

        def read():
            try:
                for request in request_iterator:
                    with LOCK:
                        if stream.node is None:
                            stream.node = request.node.id or "-"
                            emit("STREAM", kind, "node=" + stream.node)
                        try:
                            handle(stream, request)
                        except Exception as error:  # noqa: BLE001  (a bug here must show, not hang the test)
                            emit("ERROR", one_line(f"{kind} request handling: {error!r}"))
            except Exception:  # noqa: BLE001  (the stream was cancelled or aborted)
                pass
            stream.out.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            while True:
                item = stream.out.get()
                if item is None:
                    return
                if item is CLOSE:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "closed by xds_ads_server close command")
                yield item
        finally:
            with LOCK:
                if stream in self.streams:
                    self.streams.remove(stream)
                emit("STREAM-END", kind, "node=" + (stream.node or "-"))
            stream.done.set()

    # --- requests -----------------------------------------------------------
    def _on_sotw(self, stream, request):
        t, names = request.type_url, set(request.resource_names)
        error = one_line(request.error_detail.message) if request.HasField("error_detail") else "-"
        emit("REQUEST sotw", "type=" + short(t), "version=" + (request.version_info or "-"),
             "nonce=" + (request.response_nonce or "-"), "names=" + fmt(request.resource_names), "error=" + error)
        sub = stream.subs.get(t)
        if sub is not None and request.response_nonce != sub.nonce:
            emit("STALE", short(t), request.response_nonce or "-")
            return
        if sub is not None and request.HasField("error_detail"):
            emit("NACK", short(t), error)
            return
        first = sub is None
        sub = stream.subs.setdefault(t, Subscription())
        if names:
            sub.legacy = False
        wanted = ("*" in names or (sub.legacy and not names), names - {"*"})
        if first or wanted != (sub.wildcard, sub.names):
            sub.wildcard, sub.names = wanted
            emit("SUBSCRIBE", short(t), sub.describe())
            self._send_sotw(stream, t)
        else:
            emit("ACK", short(t), request.version_info or "-")

    def _on_delta(self, stream, request):
        t = request.type_url
        subscribe, unsubscribe = set(request.resource_names_subscribe), set(request.resource_names_unsubscribe)
        error = one_line(request.error_detail.message) if request.HasField("error_detail") else "-"
        initial = fmt(f"{n}:{v}" for n, v in sorted(request.initial_resource_versions.items()))
        emit("REQUEST delta", "type=" + short(t), "nonce=" + (request.response_nonce or "-"),
             "subscribe=" + fmt(request.resource_names_subscribe),
             "unsubscribe=" + fmt(request.resource_names_unsubscribe), "initial=" + initial, "error=" + error)
        if request.response_nonce:
            if request.HasField("error_detail"):
                emit("NACK", short(t), error)
            else:
                emit("ACK", short(t), request.response_nonce)
        first = t not in stream.subs
        sub = stream.subs.setdefault(t, Subscription())
        if not (first or subscribe or unsubscribe):
            return
        if first:
            sub.known = dict(request.initial_resource_versions)
            sub.wildcard = not subscribe  # legacy wildcard: first request names nothing
        if "*" in subscribe:
            sub.wildcard = True
        if "*" in unsubscribe:
            sub.wildcard = False
        sub.names = (sub.names | subscribe) - unsubscribe - {"*"}
        emit("SUBSCRIBE", short(t), sub.describe())
        self._sync_delta(stream, t, fresh=subscribe - {"*"}, force=first)

    # --- responses ----------------------------------------------------------
    def _send_sotw(self, stream, t, entries=None):
        sub = stream.subs[t]
        if entries is None:
            entries = [(n, a) for n, a in sorted(self.resources.get(t, {}).items()) if sub.wants(n)]
        sub.nonce = "n%d" % next(NONCES)
        version = str(self.versions.get(t, 0))
        emit("SENT sotw", "type=" + short(t), "version=" + version, "nonce=" + sub.nonce,
             "names=" + fmt(n for n, _ in entries))
        stream.out.put(discovery_pb2.DiscoveryResponse(version_info=version, type_url=t, nonce=sub.nonce,
                                                       resources=[a for _, a in entries]))

    def _send_delta(self, stream, t, entries, removed):  # entries: [(name, version, Any)]
        sub = stream.subs[t]
        sub.nonce = "n%d" % next(NONCES)
        emit("SENT delta", "type=" + short(t), "nonce=" + sub.nonce,
             "resources=" + fmt(f"{n}:{v}" for n, v, _ in entries), "removed=" + fmt(removed))
        stream.out.put(discovery_pb2.DeltaDiscoveryResponse(
            type_url=t, nonce=sub.nonce, system_version_info=str(self.versions.get(t, 0)), removed_resources=removed,
            resources=[discovery_pb2.Resource(name=n, version=v, resource=a) for n, v, a in entries]))

    def _sync_delta(self, stream, t, fresh=(), force=False):
        """Sends the difference between what the client has and what it should have."""
        sub, store = stream.subs[t], self.resources.get(t, {})
        updates = [(n, content_version(a), a) for n, a in sorted(store.items())
                   if sub.wants(n) and sub.known.get(n) != content_version(a)]
        removed = sorted(n for n in sub.known if n not in store and sub.wants(n))
        removed += sorted(n for n in fresh if n not in store and n not in sub.known)
        sub.known = {n: v for n, v in sub.known.items() if n in store and sub.wants(n)}
        sub.known.update((n, v) for n, v, _ in updates)
        if updates or removed or force:
            self._send_delta(stream, t, updates, removed)

    def _push(self, t, changed_name=None, entries=None):
        """Pushes a change of type t (or a one-off response with `entries`) to every subscribed stream."""
        for stream in list(self.streams):
            sub = stream.subs.get(t)
            if sub is None:
                continue
            if entries is not None:
                if stream.kind == "sotw":
                    self._send_sotw(stream, t, entries)
                else:
                    self._send_delta(stream, t, [(n, "g1" if n == "garbage" else content_version(a), a)
                                                 for n, a in entries], [])
            elif stream.kind == "delta":
                self._sync_delta(stream, t)
            elif sub.wants(changed_name):
                self._send_sotw(stream, t)

    # --- commands -----------------------------------------------------------
    def command(self, words):
        cmd = words[0].lower()
        if cmd in ("cluster", "listener"):
            t = TYPES[cmd]
            packed = make_cluster(words[1], int(words[2]) if len(words) > 2 else 5) if cmd == "cluster" \
                else make_listener(words[1])
            if self.resources[t].get(words[1]) != packed:
                self.resources[t][words[1]] = packed
                self.versions[t] += 1
                self._push(t, words[1])
        elif cmd == "remove":
            t = full_type(words[1])
            if self.resources[t].pop(words[2], None) is not None:
                self.versions[t] += 1
                self._push(t, words[2])
        elif cmd == "garbage":
            t = full_type(words[1])
            self.versions[t] = self.versions.get(t, 0) + 1
            self._push(t, entries=[("garbage", any_pb2.Any(type_url=t, value=b"\xff\xff\xff"))])
        elif cmd == "duplicate":
            t = full_type(words[1])
            self.versions[t] += 1
            self._push(t, entries=[(words[2], make_cluster(words[2], 1)), (words[2], make_cluster(words[2], 2))])
        elif cmd == "close":
            closing, self.streams = self.streams, []
            for stream in closing:
                stream.out.put(CLOSE)
            return closing
        else:
            raise ValueError("unknown command " + cmd)
        return []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    ads = ADSServer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(ads, server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    emit("LISTENING", port)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        try:
            with LOCK:
                closing = ads.command(words)
            for stream in closing:
                stream.done.wait(5)
            emit("OK", *words)
        except (ValueError, IndexError, KeyError) as error:
            emit("ERROR", one_line(f"{' '.join(words)}: {error!r}"))
    server.stop(0.5).wait()
    emit("OK quit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
