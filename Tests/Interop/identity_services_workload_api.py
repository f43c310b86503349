#!/usr/bin/env python3
"""py-spiffe's WorkloadApiClient against swift-mesh's Workload API server.

Fetches the X.509 context over the Unix socket, then verifies independently
with `cryptography` that the leaf is signed by an authority of the returned
bundle, carries the expected SPIFFE ID and matches the private key.
Then, optionally, checks that a raw grpcio call without the
`workload.spiffe.io` header is refused with INVALID_ARGUMENT.

Usage: identity_services_workload_api.py <socket-path> <expected-spiffe-id>
Prints "ok: ..." lines; "FAIL: ..." and exit 1 on the first failure.
"""
import sys

import grpc
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from spiffe import WorkloadApiClient
from spiffe._proto import workload_pb2, workload_pb2_grpc


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


def main():
    socket_path, expected = sys.argv[1], sys.argv[2]
    client = WorkloadApiClient(socket_path="unix://" + socket_path, default_timeout=30)
    context = client.fetch_x509_context()
    svid = context.default_svid
    if str(svid.spiffe_id) != expected:
        fail("SPIFFE ID %s, expected %s" % (svid.spiffe_id, expected))
    print("ok: py-spiffe parsed and validated the X509-SVID for %s" % svid.spiffe_id, flush=True)

    bundle = context.x509_bundle_set.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
    if bundle is None or not bundle.x509_authorities:
        fail("no bundle for trust domain %s" % svid.spiffe_id.trust_domain)
    leaf = svid.leaf
    issuer = svid.cert_chain[1] if len(svid.cert_chain) > 1 else None
    authorities = list(bundle.x509_authorities)
    signer = issuer
    if signer is None:
        signer = next((a for a in authorities if a.subject == leaf.issuer), None)
    if signer is None:
        fail("no certificate in the chain or bundle issued the leaf")
    signer.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))
    if issuer is not None:
        root = next((a for a in authorities if a.subject == issuer.issuer), None)
        if root is None:
            fail("the intermediate's issuer is not in the bundle")
        root.public_key().verify(issuer.signature, issuer.tbs_certificate_bytes, ec.ECDSA(issuer.signature_hash_algorithm))
    print("ok: cryptography verified the chain up to the bundle", flush=True)

    public = svid.private_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if public != leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        fail("private key does not match the leaf")
    svid.private_key.sign(b"probe", ec.ECDSA(hashes.SHA256()))
    print("ok: private key matches the leaf", flush=True)
    client.close()

    channel = grpc.insecure_channel("unix://" + socket_path)
    stub = workload_pb2_grpc.SpiffeWorkloadAPIStub(channel)
    try:
        next(iter(stub.FetchX509SVID(workload_pb2.X509SVIDRequest(), timeout=30)))
        fail("a request without the security header was served")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
            fail("missing header answered %s, expected INVALID_ARGUMENT" % error.code())
    print("ok: missing security header refused with INVALID_ARGUMENT", flush=True)
    channel.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
