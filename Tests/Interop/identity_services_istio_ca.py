#!/usr/bin/env python3
"""A grpcio client calling swift-mesh's Istio CA (CreateCertificate).

Builds the request with protobuf's dynamic descriptors from the public field
numbers (csr=1, validity_duration=3, metadata=4; reply cert_chain=1), makes a
P-256 CSR with `cryptography` and checks the returned chain: leaf first, with
the expected URI SAN, signed by the next certificate.

Usage: identity_services_istio_ca.py <host:port> <bearer-token> <requested-id> [impersonate-id]
Prints "ok: ..." lines, "CODE <status>" when the call fails, or "FAIL: ...".
"""
import sys

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2


def build_messages():
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(name="interop/ca.proto", package="istio.v1.auth", syntax="proto3")
    file.dependency.append("google/protobuf/struct.proto")
    request = file.message_type.add(name="IstioCertificateRequest")
    request.field.add(name="csr", number=1, type=9, label=1)
    request.field.add(name="validity_duration", number=3, type=3, label=1)
    request.field.add(name="metadata", number=4, type=11, label=1, type_name=".google.protobuf.Struct")
    response = file.message_type.add(name="IstioCertificateResponse")
    response.field.add(name="cert_chain", number=1, type=9, label=3)
    pool.Add(file)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("istio.v1.auth.IstioCertificateRequest")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("istio.v1.auth.IstioCertificateResponse")))


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


def main():
    target, token, requested = sys.argv[1], sys.argv[2], sys.argv[3]
    impersonate = sys.argv[4] if len(sys.argv) > 4 else None
    Request, Response = build_messages()
    key = ec.generate_private_key(ec.SECP256R1())
    san = impersonate or requested
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(san)]), critical=False)
           .sign(key, hashes.SHA256()))
    request = Request(csr=csr.public_bytes(serialization.Encoding.PEM).decode(), validity_duration=3600)
    if impersonate:
        request.metadata.fields["ImpersonatedIdentity"].string_value = impersonate
    channel = grpc.insecure_channel(target)
    call = channel.unary_unary("/istio.v1.auth.IstioCertificateService/CreateCertificate",
                               request_serializer=Request.SerializeToString,
                               response_deserializer=Response.FromString)
    try:
        reply = call(request, metadata=[("authorization", "Bearer " + token)], timeout=30)
    except grpc.RpcError as error:
        print("CODE %s" % error.code().name, flush=True)
        return
    chain = [x509.load_pem_x509_certificate(pem.encode()) for pem in reply.cert_chain]
    if len(chain) < 2:
        fail("chain has %d certificates, expected leaf and CA" % len(chain))
    leaf = chain[0]
    uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
    expected = impersonate or requested
    if uris != [expected]:
        fail("leaf URI SANs %s, expected [%s]" % (uris, expected))
    if leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        fail("leaf does not carry the CSR's key")
    chain[1].public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))
    lifetime = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds()
    print("ok: leaf for %s signed by the next certificate, lifetime %d s" % (uris[0], lifetime), flush=True)
    channel.close()


if __name__ == "__main__":
    main()
