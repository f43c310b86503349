#!/usr/bin/env python3
"""An ADS client built on Envoy's own generated types (xds-protos), driven by
line commands on stdin, printing one JSON line per received response.

Used by XDSServerTests to check that swift-mesh's XDSServer speaks the xDS
transport protocol to a peer it did not write.

Usage: xds_ads_peer.py <host:port> <node-id> <sotw|delta>

Commands (one per line):
  req <type-url> <names>          SotW request; names comma separated, "-" for none
  ack                             SotW: ACK the last response (its version and nonce, same names)
  nack <message>                  SotW/delta: reject the last response with error_detail
  sub <type-url> <names> [init]   delta: subscribe (init: name=version,... initial versions)
  unsub <type-url> <names>        delta: unsubscribe
  dack                            delta: ACK the last response
  recv                            print the next response as JSON
  quit
"""
import json
import queue
import sys
import threading

import grpc
from google.protobuf import any_pb2  # noqa: F401  (registers Any)
from google.rpc import status_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

KNOWN = {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster": cluster_pb2.Cluster,
    "type.googleapis.com/envoy.config.listener.v3.Listener": listener_pb2.Listener,
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration": route_pb2.RouteConfiguration,
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": endpoint_pb2.ClusterLoadAssignment,
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": secret_pb2.Secret,
}


def names_of(text):
    return [] if text == "-" else text.split(",")


def decode(any_msg):
    """Unpacks with Envoy's message class; returns the resource's own name field."""
    cls = KNOWN.get(any_msg.type_url)
    if cls is None:
        return None
    message = cls()
    if not any_msg.Unpack(message):
        raise ValueError("could not unpack " + any_msg.type_url)
    return getattr(message, "name", None) or getattr(message, "cluster_name", None)


def main():
    target, node_id, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    channel = grpc.insecure_channel(target)
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
    requests = queue.Queue()
    responses = queue.Queue()
    node = base_pb2.Node(id=node_id, cluster="interop")
    first = {"sent": False}

    def request_iterator():
        while True:
            item = requests.get()
            if item is None:
                return
            yield item

    def reader(call):
        try:
            for response in call:
                responses.put(response)
        except grpc.RpcError as error:  # stream ended
            responses.put(error)

    call = stub.StreamAggregatedResources(request_iterator()) if mode == "sotw" else stub.DeltaAggregatedResources(request_iterator())
    threading.Thread(target=reader, args=(call,), daemon=True).start()
    last = {}  # type_url -> last response
    subscribed = {}  # type_url -> the SotW resource_names last requested (every request repeats them)
    last_any = {"response": None}

    def with_node(request):
        if not first["sent"]:
            request.node.CopyFrom(node)
            first["sent"] = True
        return request

    print("READY", flush=True)
    for line in sys.stdin:
        parts = line.strip().split(" ")
        command = parts[0]
        if command == "quit":
            break
        if command == "req":
            type_url, names = parts[1], names_of(parts[2])
            previous = last.get(type_url)
            subscribed[type_url] = names
            request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=names)
            if previous is not None:
                request.version_info = previous.version_info
                request.response_nonce = previous.nonce
            requests.put(with_node(request))
        elif command == "ack":
            response = last_any["response"]
            requests.put(with_node(discovery_pb2.DiscoveryRequest(
                type_url=response.type_url, version_info=response.version_info, response_nonce=response.nonce,
                resource_names=subscribed.get(response.type_url, []))))
        elif command == "nack":
            response = last_any["response"]
            status = status_pb2.Status(code=3, message=" ".join(parts[1:]))
            if mode == "sotw":
                good = ""  # the last accepted version: none in these scenarios
                requests.put(with_node(discovery_pb2.DiscoveryRequest(
                    type_url=response.type_url, version_info=good, response_nonce=response.nonce,
                    resource_names=subscribed.get(response.type_url, []), error_detail=status)))
            else:
                requests.put(with_node(discovery_pb2.DeltaDiscoveryRequest(
                    type_url=response.type_url, response_nonce=response.nonce, error_detail=status)))
        elif command == "sub":
            request = discovery_pb2.DeltaDiscoveryRequest(type_url=parts[1], resource_names_subscribe=names_of(parts[2]))
            if len(parts) > 3:
                for pair in parts[3].split(","):
                    name, version = pair.split("=")
                    request.initial_resource_versions[name] = version
            requests.put(with_node(request))
        elif command == "unsub":
            requests.put(with_node(discovery_pb2.DeltaDiscoveryRequest(type_url=parts[1], resource_names_unsubscribe=names_of(parts[2]))))
        elif command == "dack":
            response = last_any["response"]
            requests.put(with_node(discovery_pb2.DeltaDiscoveryRequest(type_url=response.type_url, response_nonce=response.nonce)))
        elif command == "recv":
            response = responses.get(timeout=30)
            if isinstance(response, Exception):
                print(json.dumps({"error": str(response)}), flush=True)
                continue
            last_any["response"] = response
            last[response.type_url] = response
            if mode == "sotw":
                names = [decode(a) for a in response.resources]
                out = {"type": response.type_url, "version": response.version_info, "nonce": response.nonce, "names": names}
            else:
                resources = {}
                for resource in response.resources:
                    decoded = decode(resource.resource)
                    if decoded is not None and decoded != resource.name:
                        raise ValueError("resource name %r differs from payload name %r" % (resource.name, decoded))
                    resources[resource.name] = resource.version
                out = {"type": response.type_url, "nonce": response.nonce, "resources": resources,
                       "removed": list(response.removed_resources)}
            print(json.dumps(out, sort_keys=True), flush=True)
        else:
            print(json.dumps({"error": "unknown command " + command}), flush=True)
    requests.put(None)
    channel.close()
    print("BYE", flush=True)


if __name__ == "__main__":
    main()
