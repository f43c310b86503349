"""Independent checks of an SVID directory written by `meshctl svid issue`.

Usage: check_svid.py DIR EXPECTED_SPIFFE_ID

Uses peers this project did not write: `cryptography` parses the certificates
and the SPIFFE bundle (JWK set) by hand, and py-spiffe (`spiffe`) loads the
chain, key and bundle with its own X509-SVID validation.
Prints one "ok: ..." line per check; exits 1 with the reason on the first failure.
"""
import base64
import json
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from spiffe import SpiffeId, TrustDomain, X509Bundle, X509Svid


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def b64url(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()


def main():
    directory = pathlib.Path(sys.argv[1])
    expected = sys.argv[2]

    # cryptography: exactly one URI SAN, the SVID leaf profile.
    chain = x509.load_pem_x509_certificates((directory / "svid.pem").read_bytes())
    leaf = chain[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    if uris != [expected]:
        fail(f"URI SANs {uris}, expected exactly [{expected}]")
    print(f"ok: cryptography finds exactly one URI SAN {uris[0]}")
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    if not usage.digital_signature or usage.key_cert_sign or usage.crl_sign:
        fail(f"leaf key usage {usage}")
    if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
        fail("leaf is a CA")
    print("ok: cryptography sees digitalSignature, no keyCertSign/cRLSign, not a CA")

    # py-spiffe: load the SVID (its own validation) and the PEM bundle.
    svid = X509Svid.load(directory / "svid.pem", directory / "svid.key", Encoding.PEM)
    if str(svid.spiffe_id) != expected:
        fail(f"py-spiffe SVID id {svid.spiffe_id}")
    print(f"ok: py-spiffe loads the SVID chain and key as {svid.spiffe_id}")
    td = SpiffeId(expected).trust_domain
    bundle = X509Bundle.load(td, directory / "bundle.pem", Encoding.PEM)
    roots = list(bundle.x509_authorities)
    if len(roots) != 1:
        fail(f"py-spiffe bundle has {len(roots)} authorities")
    # Walk the presented chain, then up to the bundle's root.
    for child, parent in zip(chain, chain[1:] + [roots[0]]):
        child.verify_directly_issued_by(parent)
    print(f"ok: py-spiffe loads bundle.pem for {td}; the chain is signed by its authority")

    # The SPIFFE bundle (JWK set), parsed by hand.
    document = json.loads((directory / "bundle.json").read_text())
    keys = [k for k in document["keys"] if k.get("use") == "x509-svid"]
    if len(keys) != 1:
        fail(f"{len(keys)} x509-svid keys in bundle.json")
    key = keys[0]
    if key.get("kty") != "EC" or key.get("crv") != "P-256" or len(key.get("x5c", [])) != 1:
        fail(f"unexpected JWK {key}")
    jwk_cert = x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))
    if jwk_cert != roots[0]:
        fail("bundle.json x5c differs from bundle.pem")
    numbers = jwk_cert.public_key().public_numbers()
    if not isinstance(jwk_cert.public_key(), ec.EllipticCurvePublicKey) or key["x"] != b64url(numbers.x) or key["y"] != b64url(numbers.y):
        fail("JWK x/y do not match the certificate key")
    if "spiffe_sequence" not in document:
        fail("bundle.json lacks spiffe_sequence")
    print("ok: bundle.json is a JWK set with use=x509-svid, matching x/y and x5c, and spiffe_sequence")


if __name__ == "__main__":
    main()
