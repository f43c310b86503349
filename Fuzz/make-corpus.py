#!/usr/bin/env python3
"""Writes the seed corpora under Fuzz/Corpus/ and the fixed test PKI the X.509
harnesses trust (Fuzz/Sources/FuzzSupport/FuzzPKI.swift).

Run it only to change the seeds: it makes new keys, so the certificates in the
corpora and in FuzzPKI.swift change together. Needs python3 with
`cryptography` and `protoc` (Debian protobuf-compiler) for the protobuf seeds.

    python3 Fuzz/make-corpus.py
"""
import base64
import datetime
import os
import shutil
import struct
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "Corpus")

# Every certificate is valid over this window; the harnesses verify at 2030-01-01.
NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.timezone.utc)


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "swift-mesh fuzz"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(subject, key, issuer, issuer_key, ca, uris=(), serial=1):
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
               .public_key(key.public_key()).serial_number(serial)
               .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if uris:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pem(*certs):
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(*certs):
    return b"".join(c.public_bytes(serialization.Encoding.DER) for c in certs)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def framed(messages):
    return b"".join(struct.pack(">H", len(m)) + m for m in messages)


def protoc(message_type, text):
    protos = ["istio/workload/workload.proto", "istio/security/authorization.proto", "istio/zds/zds.proto",
              "envoy/service/discovery/v3/discovery.proto"]
    result = subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "-I", "/usr/include", "--encode=" + message_type] + protos,
                            input=text.encode(), capture_output=True, check=True)
    return result.stdout


def pki():
    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = certificate("fuzz root", root_key, "fuzz root", root_key, True, uris=["spiffe://example.org"], serial=1)
    inter = certificate("fuzz intermediate", inter_key, "fuzz root", root_key, True, uris=["spiffe://example.org"], serial=2)
    leaf = certificate("web", leaf_key, "fuzz intermediate", inter_key, False, uris=["spiffe://example.org/ns/default/sa/web"], serial=3)
    direct = certificate("api", leaf_key, "fuzz root", root_key, False, uris=["spiffe://example.org/ns/prod/sa/api"], serial=4)
    two = certificate("two", leaf_key, "fuzz root", root_key, False, uris=["spiffe://example.org/a", "spiffe://example.org/b"], serial=5)
    foreign = certificate("foreign", leaf_key, "fuzz intermediate", inter_key, False, uris=["spiffe://other.org/ns/x/sa/y"], serial=6)

    # svid-chain: byte 0 even = PEM text, odd = concatenated DER.
    write("svid-chain", "pem-leaf-intermediate", b"\x00" + pem(leaf, inter))
    write("svid-chain", "pem-leaf-root", b"\x00" + pem(direct))
    write("svid-chain", "pem-full-chain", b"\x00" + pem(leaf, inter, root))
    write("svid-chain", "pem-two-uris", b"\x00" + pem(two))
    write("svid-chain", "der-leaf-intermediate", b"\x01" + der(leaf, inter))
    write("svid-chain", "der-leaf-root", b"\x01" + der(direct))
    write("svid-chain", "der-foreign", b"\x03" + der(foreign, inter))

    # bundle-json: SPIFFE bundles (JWK sets) for example.org.
    numbers = root_key.public_key().public_numbers()
    x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
    root_b64 = base64.b64encode(der(root)).decode()
    inter_b64 = base64.b64encode(der(inter)).decode()
    write("bundle-json", "one-key", '{"keys":[{"use":"x509-svid","kty":"EC","crv":"P-256","x":"%s","y":"%s","x5c":["%s"]}],'
          '"spiffe_sequence":1,"spiffe_refresh_hint":300}' % (b64url(x), b64url(y), root_b64))
    write("bundle-json", "two-keys-and-jwt", '{"keys":[{"use":"x509-svid","kty":"EC","x5c":["%s"]},{"use":"x509-svid","kty":"EC","x5c":["%s"]},'
          '{"use":"jwt-svid","kty":"EC","kid":"k1","crv":"P-256","x":"%s","y":"%s"}],"spiffe_sequence":7}' % (root_b64, inter_b64, b64url(x), b64url(y)))
    write("bundle-json", "empty", '{"keys":[]}')
    write("bundle-json", "unknown-kty", '{"keys":[{"use":"x509-svid","kty":"OKP","x5c":["AA=="]}]}')

    lines = ["// Generated by Fuzz/make-corpus.py: the fixed trust anchors of the X.509 harnesses.",
             "// The seeds in Fuzz/Corpus/svid-chain and bundle-json chain up to these.", "",
             "/// PEM of the fuzz PKI's root (trust domain example.org) and its intermediate CA.",
             "public enum FuzzPKI {",
             '    public static let rootPEM = """',
             *[line for line in pem(root).decode().splitlines()],
             '    """', "",
             '    public static let intermediatePEM = """',
             *[line for line in pem(inter).decode().splitlines()],
             '    """', "}", ""]
    out = []
    inside = False
    for line in lines:
        if line.endswith('= """'):
            out.append(line)
            inside = True
        elif line == '    """':
            out.append(line)
            inside = False
        else:
            out.append(("    " + line) if inside else line)
    with open(os.path.join(HERE, "Sources", "FuzzSupport", "FuzzPKI.swift"), "w") as f:
        f.write("\n".join(out))


def spiffe_ids():
    for i, text in enumerate(["spiffe://cluster.local/ns/default/sa/web", "spiffe://example.org", "spiffe://example.org/a/b.c/d-e_f",
                              "spiffe://td/ns/a/sa/b/extra", "spiffe://a.b.c.d/x", "SPIFFE://example.org/x",
                              "spiffe://example.org:8080/x", "spiffe://example.org/./x", "spiffe://example.org/x/", "example.org"]):
        write("spiffe-id", "seed-%02d" % i, text)


def hbone_authority():
    write("hbone-authority", "ipv4", "\x0010.0.0.7:8080\nfor=\"10.244.0.9:40000\"\nk=v\n00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    write("hbone-authority", "ipv6", "\x00[fd00::7]:80\nfor=\"[fd00::9]:1234\";proto=https")
    write("hbone-authority", "hostname", "\x00echo.default.svc.cluster.local:80\nfor=10.0.0.1")
    write("hbone-authority", "bad", "\x00[::1:80\n")
    # An HPACK block (selector odd): :method CONNECT, :authority, forwarded, all as literals without indexing.
    def literal(name, value):
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
    block = literal(b":method", b"CONNECT") + literal(b":authority", b"10.0.0.7:8080") + literal(b"forwarded", b'for="10.244.0.9:1"')
    write("hbone-authority", "hpack-connect", b"\x01" + block)
    write("hbone-authority", "hpack-indexed", b"\x01" + b"\x82" + literal(b":authority", b"[::1]:15008"))


def h2_frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hbone_frames():
    settings = h2_frame(4, 0, 0, struct.pack(">HI", 4, 4 << 20) + struct.pack(">HI", 5, 1 << 20))
    ack = h2_frame(4, 1, 0, b"")
    def literal(name, value):
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
    connect = literal(b":method", b"CONNECT") + literal(b":authority", b"10.0.0.7:8080")
    headers = h2_frame(1, 4, 1, connect)
    data = h2_frame(0, 0, 1, b"hello over hbone")
    padded = h2_frame(0, 8, 1, b"\x04" + b"padded" + b"\x00" * 4)
    end = h2_frame(0, 1, 1, b"bye")
    window = h2_frame(8, 0, 1, struct.pack(">I", 100000)) + h2_frame(8, 0, 0, struct.pack(">I", 1 << 20))
    ping = h2_frame(6, 0, 0, b"12345678")
    rst = h2_frame(3, 0, 1, struct.pack(">I", 8))
    get = h2_frame(1, 5, 3, literal(b":method", b"GET") + literal(b":path", b"/") + literal(b":scheme", b"https") + literal(b":authority", b"x:1"))
    # Byte 0: read size (0 = one read); byte 1: flags (bit 0 echo, bit 1 pause the upstream between reads).
    write("hbone-frames", "connect-data-end", b"\x00\x01" + settings + ack + headers + data + padded + end)
    write("hbone-frames", "split-reads", b"\x07\x03" + settings + headers + data + window + data + ping + end)
    write("hbone-frames", "small-window", b"\x00\x01" + h2_frame(4, 0, 0, struct.pack(">HI", 4, 10)) + headers + data + data + window)
    write("hbone-frames", "reset", b"\x00\x00" + settings + headers + data + rst + data)
    write("hbone-frames", "not-connect", b"\x00\x01" + settings + get)
    write("hbone-frames", "two-streams", b"\x03\x01" + settings + headers + h2_frame(1, 4, 3, connect) + h2_frame(0, 0, 3, b"three") + data + end)
    write("hbone-frames", "goaway", b"\x00\x00" + settings + headers + h2_frame(7, 0, 0, struct.pack(">II", 1, 0)))


ADDRESS_URL = "type.googleapis.com/istio.workload.Address"
AUTHZ_URL = "type.googleapis.com/istio.security.Authorization"

WORKLOAD = '''workload {
  uid: "cluster1//v1/Pod/default/echo-1" name: "echo-1" namespace: "default" service_account: "echo"
  addresses: "\\n\\000\\000\\007" node: "node-a" tunnel_protocol: HBONE trust_domain: "cluster.local"
  services { key: "default/echo.default.svc.cluster.local" value { ports { service_port: 80 target_port: 8080 } } }
}'''
WORKLOAD6 = '''workload {
  uid: "cluster1//v1/Pod/default/echo-2" name: "echo-2" namespace: "default" service_account: "echo"
  addresses: "\\375\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\007" network: "net1"
}'''
SERVICE = '''service {
  name: "echo" namespace: "default" hostname: "echo.default.svc.cluster.local"
  addresses { address: "\\n`\\000\\n" } ports { service_port: 80 target_port: 8080 }
}'''
AUTHZ = '''name: "allow-client" namespace: "default" scope: NAMESPACE action: ALLOW
groups { rules { matches {
  principals { exact: "cluster.local/ns/default/sa/client" } namespaces { prefix: "def" }
  source_ips { address: "\\n\\364\\000\\000" length: 16 } destination_ports: 8080 not_destination_ports: 9090
} } }'''
DENY = '''name: "deny-all" namespace: "default" scope: GLOBAL action: DENY
groups { rules { matches { not_principals { suffix: "/sa/admin" } } } }'''


def any_of(url, body):
    return "[%s] { %s }" % (url, body)


def xds():
    sotw = lambda url, version, nonce, bodies: protoc("envoy.service.discovery.v3.DiscoveryResponse",
        'version_info: "%s" type_url: "%s" nonce: "%s" ' % (version, url, nonce) + " ".join("resources { %s }" % any_of(url, b) for b in bodies))
    wrapped = protoc("envoy.service.discovery.v3.DiscoveryResponse",
        'version_info: "2" type_url: "%s" nonce: "n2" resources { [type.googleapis.com/envoy.service.discovery.v3.Resource] { name: "cluster1//v1/Pod/default/echo-1" version: "a" resource { %s } } }'
        % (ADDRESS_URL, any_of(ADDRESS_URL, WORKLOAD)))
    delta = lambda url, nonce, resources, removed=(): protoc("envoy.service.discovery.v3.DeltaDiscoveryResponse",
        'system_version_info: "s" type_url: "%s" nonce: "%s" ' % (url, nonce)
        + " ".join('resources { name: "%s" version: "%s" resource { %s } }' % (n, v, any_of(url, b)) for n, v, b in resources)
        + " ".join('removed_resources: "%s"' % r for r in removed))
    # Byte 0 bit 0: 0 state of the world, 1 delta; then 2-byte-length-framed responses.
    write("xds-response", "sotw-addresses", b"\x00" + framed([sotw(ADDRESS_URL, "1", "n1", [WORKLOAD, WORKLOAD6, SERVICE])]))
    write("xds-response", "sotw-authorization", b"\x00" + framed([sotw(AUTHZ_URL, "1", "n1", [AUTHZ, DENY]), sotw(ADDRESS_URL, "1", "n2", [WORKLOAD])]))
    write("xds-response", "sotw-then-shrink", b"\x00" + framed([sotw(ADDRESS_URL, "1", "n1", [WORKLOAD, SERVICE]), sotw(ADDRESS_URL, "2", "n2", [SERVICE]), wrapped]))
    write("xds-response", "sotw-bad-address", b"\x00" + framed([sotw(ADDRESS_URL, "1", "n1", [WORKLOAD.replace("\\n\\000\\000\\007", "\\001\\002\\003")])]))
    write("xds-response", "delta-add-remove", b"\x01" + framed([
        delta(ADDRESS_URL, "d1", [("cluster1//v1/Pod/default/echo-1", "1", WORKLOAD), ("default/echo.default.svc.cluster.local", "1", SERVICE)]),
        delta(AUTHZ_URL, "d2", [("default/allow-client", "1", AUTHZ)]),
        delta(ADDRESS_URL, "d3", [], removed=["cluster1//v1/Pod/default/echo-1"])]))
    mismatched = protoc("envoy.service.discovery.v3.DeltaDiscoveryResponse",
        'type_url: "%s" nonce: "d1" resources { name: "x" version: "1" resource { %s } }' % (ADDRESS_URL, any_of(AUTHZ_URL, AUTHZ)))
    write("xds-response", "delta-wrong-type", b"\x01" + framed([mismatched]))
    # ZDS: per message a flag byte (bit 0: pass a descriptor), a 2-byte length, the WorkloadRequest.
    zds = lambda flag, text: bytes([flag]) + framed([protoc("istio.workload.zds.WorkloadRequest", text)])
    add = 'add { uid: "pod-1" workload_info { name: "echo" namespace: "default" service_account: "echo" } }'
    write("zds", "add", zds(1, add))
    write("zds", "add-keep-snapshot-del", zds(1, add) + zds(0, 'keep { uid: "pod-1" }') + zds(0, "snapshot_sent {}") + zds(0, 'del { uid: "pod-1" }'))
    write("zds", "add-without-descriptor", zds(0, add))
    write("zds", "keep-unknown", zds(0, 'keep { uid: "nope" }') + zds(1, "snapshot_sent {}"))
    write("zds", "no-payload", b"\x00\x00\x02\x08\x01")


def dns_query(name, qtype, flags=0x0100, qid=0x1234):
    body = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".") if label) + b"\x00"
    return struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0) + body + struct.pack(">HH", qtype, 1)


def dns():
    # Byte 0: bit 0 TCP (else UDP), bit 1 client namespace unknown.
    write("dns", "a-fqdn", b"\x00" + dns_query("echo.default.svc.cluster.local", 1))
    write("dns", "aaaa-short", b"\x00" + dns_query("echo", 28))
    write("dns", "any-two-labels", b"\x01" + dns_query("echo.default", 255))
    write("dns", "many-udp-truncated", b"\x00" + dns_query("many.default.svc.cluster.local", 1))
    write("dns", "nxdomain", b"\x00" + dns_query("nope.default.svc.cluster.local", 1))
    write("dns", "forward", b"\x02" + dns_query("example.com", 1))
    compressed = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x04echo\xc0\x11" + b"\x07default\x03svc\x07cluster\x05local\x00" + struct.pack(">HH", 1, 1)
    write("dns", "compressed-name", b"\x00" + compressed)
    write("dns", "notimp", b"\x00" + dns_query("echo", 1, flags=0x2100))


def yaml_seeds():
    for target, sources in [("policy-yaml", ["Tests/PolicyEngineTests/Fixtures/demo", "examples/mesh/policy.yaml", "Tests/PolicyEngineTests/Fixtures/invalid"]),
                            ("manifests", ["examples/mesh", "Tests/MeshLabTests/Fixtures/ambient"])]:
        for source in sources:
            path = os.path.join(ROOT, source)
            files = [os.path.join(path, f) for f in sorted(os.listdir(path))] if os.path.isdir(path) else [path]
            for f in files:
                with open(f, "rb") as handle:
                    write(target, os.path.basename(os.path.dirname(f)) + "-" + os.path.basename(f), handle.read())
    with open(os.path.join(ROOT, "examples/mesh/cluster.yaml"), "rb") as c, open(os.path.join(ROOT, "examples/mesh/workloads.yaml"), "rb") as w:
        write("manifests", "two-files", c.read() + b"\x00" + w.read())


LOCAL_CONFIG = """workloads:
- uid: cluster1//v1/Pod/default/echo
  name: echo
  namespace: default
  serviceAccount: echo
  workloadIps: [10.0.0.7]
  node: node-b
  protocol: HBONE
  services:
    default/echo.default.svc.cluster.local: {80: 8080}
- uid: cluster1//v1/Pod/default/client
  name: client
  namespace: default
  serviceAccount: client
  workloadIps: [10.0.0.8, "fd00::8"]
  node: node-a
services:
- {name: echo, namespace: default, hostname: echo.default.svc.cluster.local, vips: [/10.96.0.10], ports: {80: 8080}}
policies:
- name: allow-frontend
  namespace: default
  scope: Namespace
  action: Allow
  rules: [[[{principals: [cluster.local/ns/default/sa/frontend], destinationPorts: [8080]}]]]
- name: deny-admin
  namespace: default
  scope: Global
  action: Deny
  rules: [[[{notPrincipals: ["*/sa/admin"], sourceIps: [10.0.0.0/8], notDestinationPorts: [22]}]]]
"""


def local_config():
    write("local-config", "full", LOCAL_CONFIG)
    write("local-config", "empty", "workloads: []\n")
    write("local-config", "duplicate-ip", "workloads:\n- {uid: a, name: a, namespace: n, workloadIps: [10.0.0.1]}\n- {uid: b, name: b, namespace: n, workloadIps: [10.0.0.1]}\n")


def socks5():
    # First byte: how the harness splits the stream into reads (even: byte by byte).
    greeting = [5, 1, 0]
    name = b"echo.default.svc.cluster.local"
    write("socks5", "ipv4-whole", bytes([0] + greeting + [5, 1, 0, 1, 10, 244, 1, 7, 0x1F, 0x90]))
    write("socks5", "ipv4-split", bytes([3] + [5, 2, 0, 2] + [5, 1, 0, 1, 127, 0, 0, 1, 0, 80]) + b"GET / HTTP/1.1\r\n")
    write("socks5", "domain", bytes([1] + greeting + [5, 1, 0, 3, len(name)]) + name + bytes([0, 80]))
    write("socks5", "ipv6", bytes([5] + greeting + [5, 1, 0, 4, 0xFD] + [0] * 14 + [1, 0, 80]))
    write("socks5", "bind", bytes([0] + greeting + [5, 2, 0, 1, 1, 2, 3, 4, 0, 80]))
    write("socks5", "no-method", bytes([0, 5, 1, 2]))
    write("socks5", "socks4", bytes([0, 4, 1, 0, 80, 1, 2, 3, 4, 0]))


if __name__ == "__main__":
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    pki()
    spiffe_ids()
    hbone_authority()
    hbone_frames()
    xds()
    dns()
    yaml_seeds()
    local_config()
    socks5()
    for target in sorted(os.listdir(CORPUS)):
        print(target, len(os.listdir(os.path.join(CORPUS, target))))
