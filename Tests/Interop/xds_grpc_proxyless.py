#!/usr/bin/env python3
"""grpcio's built-in xDS client (proxyless gRPC) against swift-mesh's XDSServer.

Starts a plain gRPC backend on 127.0.0.1 (port 0) and prints "BACKEND <port>".
After a line on stdin (the test has published the xDS snapshot pointing at
that port), it writes a bootstrap naming the xDS server, sets
GRPC_XDS_BOOTSTRAP, dials xds:///<target>, makes one unary call and prints
"RESPONSE <text>" (or "FAILED <error>").

Usage: xds_grpc_proxyless.py <xds-port> <node-id> <target> <workdir>
"""
import json
import os
import sys
from concurrent import futures

import grpc


def main():
    xds_port, node_id, target, workdir = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))

    def say(request, context):
        return b"hello " + request

    handler = grpc.method_handlers_generic_handler(
        "swiftmesh.interop.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("BACKEND %d" % port, flush=True)

    sys.stdin.readline()
    bootstrap = {
        "xds_servers": [{
            "server_uri": "127.0.0.1:%s" % xds_port,
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": {"id": node_id, "cluster": "interop", "locality": {"zone": "z1"}},
    }
    path = os.path.join(workdir, "xds-bootstrap.json")
    with open(path, "w") as handle:
        json.dump(bootstrap, handle)
    os.environ["GRPC_XDS_BOOTSTRAP"] = path

    channel = grpc.insecure_channel("xds:///" + target)
    call = channel.unary_unary("/swiftmesh.interop.Echo/Say")
    try:
        reply = call(b"swift-mesh", timeout=45, wait_for_ready=True)
        print("RESPONSE %s" % reply.decode(), flush=True)
    except grpc.RpcError as error:
        print("FAILED %s %s" % (error.code(), error.details()), flush=True)
    channel.close()
    server.stop(None)


if __name__ == "__main__":
    main()
