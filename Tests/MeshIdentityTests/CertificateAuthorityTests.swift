import Foundation
import Testing
import X509
import Crypto
@testable import MeshIdentity

@Suite("Certificate authority")
struct CertificateAuthorityTests {
    @Test("issued leaves carry the SVID profile")
    func leafProfile() throws {
        let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        let now = Date()
        let svid = try ca.issueSVID(for: SPIFFEID("spiffe://example.org/ns/a/sa/b"), now: now)
        let leaf = svid.leaf
        #expect(try leaf.extensions.extendedKeyUsage.map(Array.init) == [.serverAuth, .clientAuth])
        #expect(try leaf.extensions.keyUsage?.digitalSignature == true)
        #expect(try leaf.extensions.keyUsage?.keyCertSign == false)
        #expect(abs(svid.expiresAt.timeIntervalSince(now) - 24 * 3600) < 2)
        #expect(leaf.signatureAlgorithm == .ecdsaWithSHA256)
        let other = try ca.issueSVID(for: SPIFFEID("spiffe://example.org/ns/a/sa/b"), now: now)
        #expect(other.leaf.serialNumber != leaf.serialNumber)
        #expect(try X509SVIDVerifier().verify(chain: svid.chain, bundles: TrustBundleSet([ca.trustBundle])).id == svid.id)
    }

    @Test("issues from a CSR after checking its signature and ID")
    func fromCSR() throws {
        let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        let key = P256.Signing.PrivateKey()
        let id = try SPIFFEID("spiffe://example.org/web")
        let csr = try CertificateAuthority.makeCSR(id: id, privateKey: key)
        let chain = try ca.issue(csr: csr, ttl: 600)
        let svid = try X509SVID(chain: chain, privateKey: key)
        #expect(svid.id == id)
        #expect(abs(svid.expiresAt.timeIntervalSince(svid.notBefore) - 660) < 2)

        // PEM round trip of the CSR.
        let pem = try csr.serializeAsPEM().pemString
        #expect(try ca.issue(csrPEM: pem, allowedID: id).count == 1)

        #expect(throws: CertificateAuthorityError.csrIDMismatch(requested: id, allowed: try SPIFFEID("spiffe://example.org/other"))) {
            try ca.issue(csr: csr, allowedID: SPIFFEID("spiffe://example.org/other"))
        }
        let foreign = try CertificateAuthority.makeCSR(id: SPIFFEID("spiffe://evil.org/web"), privateKey: key)
        #expect(throws: CertificateAuthorityError.foreignTrustDomain(requested: try TrustDomain("evil.org"), ca: try TrustDomain("example.org"))) {
            try ca.issue(csr: foreign)
        }
        #expect(throws: CertificateAuthorityError.invalidTTL(0)) { try ca.issue(csr: csr, ttl: 0) }
        #expect(throws: CertificateAuthorityError.self) { try ca.issue(csrPEM: "not a csr") }
    }

    @Test("a CSR whose signature was made by another key is refused")
    func forgedCSR() throws {
        let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        let good = try CertificateAuthority.makeCSR(id: SPIFFEID("spiffe://example.org/a"), privateKey: P256.Signing.PrivateKey())
        let other = try CertificateAuthority.makeCSR(id: SPIFFEID("spiffe://example.org/a"), privateKey: P256.Signing.PrivateKey())
        // Good request info with the other request's signature.
        let forged = try CertificateSigningRequest(
            version: good.version, subject: good.subject, publicKey: good.publicKey, attributes: good.attributes,
            signatureAlgorithm: other.signatureAlgorithm, signature: other.signature
        )
        #expect(throws: CertificateAuthorityError.csrSignatureInvalid) { try ca.issue(csr: forged) }
    }

    @Test("a CSR with two URI SANs or none is refused")
    func csrSANs() throws {
        let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        let key = P256.Signing.PrivateKey()
        let two = try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName(), privateKey: .init(key),
            attributes: .init([.init(ExtensionRequest(extensions: Certificate.Extensions {
                SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org/a"), .uniformResourceIdentifier("spiffe://example.org/b")])
            }))]),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        #expect(throws: CertificateAuthorityError.csrMultipleURISANs(2)) { try ca.issue(csr: two) }
        let none = try CertificateSigningRequest(version: .v1, subject: DistinguishedName(), privateKey: .init(key), attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256)
        #expect(throws: CertificateAuthorityError.csrMissingSPIFFEID) { try ca.issue(csr: none) }
        // With an allowed ID from the caller, a CSR without SAN gets that ID.
        let chain = try ca.issue(csr: none, allowedID: SPIFFEID("spiffe://example.org/caller"))
        #expect(try X509SVIDVerifier.spiffeID(ofLeaf: chain[0]).path == "/caller")
    }

    @Test("a CA from an existing key and chain; mismatched key refused")
    func fromExisting() throws {
        let root = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        let reloaded = try CertificateAuthority(chainPEM: root.chainPEM(), privateKeyPEM: root.privateKeyPEM, trustDomain: root.trustDomain)
        let svid = try reloaded.issueSVID(for: SPIFFEID("spiffe://example.org/x"))
        // Without a trust domain, the one in the CA certificate's URI SAN.
        #expect(try CertificateAuthority(chainPEM: root.chainPEM(), privateKeyPEM: root.privateKeyPEM).trustDomain == root.trustDomain)
        #expect(try X509SVIDVerifier().verify(chain: svid.chain, bundles: TrustBundleSet([root.trustBundle])).id == svid.id)
        let other = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        #expect(throws: CertificateAuthorityError.keyMismatch) {
            try CertificateAuthority(chainPEM: root.chainPEM(), privateKeyPEM: other.privateKeyPEM, trustDomain: root.trustDomain)
        }
        // A leaf is not a CA.
        #expect(throws: CertificateAuthorityError.self) {
            try CertificateAuthority(chain: svid.chain, privateKey: svid.privateKey, trustDomain: root.trustDomain)
        }
    }
}
