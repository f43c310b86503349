import Foundation
import Testing
import X509
import Crypto
@testable import MeshIdentity

@Suite("X509-SVID validation")
struct X509SVIDVerifierTests {
    let verifier = X509SVIDVerifier()

    @Test("a CA-issued SVID verifies and yields its ID")
    func valid() throws {
        let pki = try TestPKI()
        let svid = try pki.authority.issueSVID(for: SPIFFEID("spiffe://example.org/web"))
        let verified = try verifier.verify(chain: svid.chain, bundles: pki.bundles)
        #expect(verified.id.description == "spiffe://example.org/web")
        #expect(verified.path.last == pki.root)
    }

    @Test("a chain through an intermediate verifies")
    func viaIntermediate() throws {
        let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        let intermediate = try ca.makeIntermediate()
        let svid = try intermediate.issueSVID(for: SPIFFEID("spiffe://example.org/web"))
        #expect(svid.chain.count == 2)
        let verified = try verifier.verify(chain: svid.chain, bundles: TrustBundleSet([ca.trustBundle]))
        #expect(verified.path.count == 3)
        // Without the intermediate the root cannot be reached.
        #expect(throws: X509SVIDValidationError.self) {
            try verifier.verify(chain: [svid.leaf], bundles: TrustBundleSet([ca.trustBundle]))
        }
    }

    @Test("two URI SANs")
    func twoURISANs() throws {
        let pki = try TestPKI()
        let leaf = try pki.leaf(uris: ["spiffe://example.org/a", "spiffe://example.org/b"]).certificate
        #expect(throws: X509SVIDValidationError.multipleURISANs(count: 2)) {
            try verifier.verify(chain: [leaf], bundles: pki.bundles)
        }
    }

    @Test("no URI SAN")
    func noURISAN() throws {
        let pki = try TestPKI()
        let leaf = try pki.leaf(uris: []).certificate
        #expect(throws: X509SVIDValidationError.missingURISAN) { try verifier.verify(chain: [leaf], bundles: pki.bundles) }
    }

    @Test("URI SAN that is not a SPIFFE ID")
    func badURI() throws {
        let pki = try TestPKI()
        let leaf = try pki.leaf(uris: ["https://example.org/a"]).certificate
        #expect(throws: X509SVIDValidationError.invalidSPIFFEID(SPIFFEIDError(rule: .wrongScheme, position: 0, input: "https://example.org/a"))) {
            try verifier.verify(chain: [leaf], bundles: pki.bundles)
        }
    }

    @Test("a CA certificate as leaf")
    func caLeaf() throws {
        let pki = try TestPKI()
        let leaf = try pki.leaf(isCA: true).certificate
        #expect(throws: X509SVIDValidationError.leafIsCA) { try verifier.verify(chain: [leaf], bundles: pki.bundles) }
    }

    @Test("missing digitalSignature")
    func missingDigitalSignature() throws {
        let pki = try TestPKI()
        let noUsage = try pki.leaf(keyUsage: nil).certificate
        #expect(throws: X509SVIDValidationError.leafMissingDigitalSignature) { try verifier.verify(chain: [noUsage], bundles: pki.bundles) }
        let onlyEncipher = try pki.leaf(keyUsage: KeyUsage(keyEncipherment: true)).certificate
        #expect(throws: X509SVIDValidationError.leafMissingDigitalSignature) { try verifier.verify(chain: [onlyEncipher], bundles: pki.bundles) }
    }

    @Test("keyCertSign or cRLSign on a leaf")
    func signingUsageOnLeaf() throws {
        let pki = try TestPKI()
        let certSign = try pki.leaf(keyUsage: KeyUsage(digitalSignature: true, keyCertSign: true)).certificate
        #expect(throws: X509SVIDValidationError.leafHasKeyCertSign) { try verifier.verify(chain: [certSign], bundles: pki.bundles) }
        let crlSign = try pki.leaf(keyUsage: KeyUsage(digitalSignature: true, cRLSign: true)).certificate
        #expect(throws: X509SVIDValidationError.leafHasCRLSign) { try verifier.verify(chain: [crlSign], bundles: pki.bundles) }
    }

    @Test("expired and not yet valid")
    func validityWindow() throws {
        let pki = try TestPKI()
        let now = Date()
        let expired = try pki.leaf(notBefore: now.addingTimeInterval(-7200), notAfter: now.addingTimeInterval(-3600)).certificate
        #expect {
            try verifier.verify(chain: [expired], bundles: pki.bundles, now: now)
        } throws: { error in
            if case .expired = error as? X509SVIDValidationError { return true }
            return false
        }
        let future = try pki.leaf(notBefore: now.addingTimeInterval(3600), notAfter: now.addingTimeInterval(7200)).certificate
        #expect {
            try verifier.verify(chain: [future], bundles: pki.bundles, now: now)
        } throws: { error in
            if case .notYetValid = error as? X509SVIDValidationError { return true }
            return false
        }
        // Valid at a time inside the window.
        #expect(try verifier.verify(chain: [future], bundles: pki.bundles, now: now.addingTimeInterval(5000)).id.path == "/workload")
    }

    @Test("an ID of a trust domain without a bundle")
    func wrongTrustDomain() throws {
        let pki = try TestPKI()
        let leaf = try pki.leaf(uris: ["spiffe://other.org/workload"]).certificate
        #expect(throws: X509SVIDValidationError.noBundleForTrustDomain(try TrustDomain("other.org"))) {
            try verifier.verify(chain: [leaf], bundles: pki.bundles)
        }
    }

    @Test("federation: each ID only against its own trust domain's bundle")
    func federation() throws {
        let a = try TestPKI(trustDomain: "a.org")
        let b = try TestPKI(trustDomain: "b.org")
        let bundles = TrustBundleSet([a.authority.trustBundle, b.authority.trustBundle])
        let fromB = try b.authority.issueSVID(for: SPIFFEID("spiffe://b.org/x"))
        #expect(try verifier.verify(chain: fromB.chain, bundles: bundles).id.trustDomain.name == "b.org")
        // A leaf claiming b.org but signed by a.org's root is refused.
        let forged = try a.leaf(uris: ["spiffe://b.org/x"]).certificate
        #expect(throws: X509SVIDValidationError.unknownAuthority(issuer: a.root.subject.description)) {
            try verifier.verify(chain: [forged], bundles: bundles)
        }
    }

    @Test("unknown root")
    func unknownRoot() throws {
        let trusted = try TestPKI()
        let stranger = try TestPKI()
        let svid = try stranger.authority.issueSVID(for: SPIFFEID("spiffe://example.org/x"))
        #expect(throws: X509SVIDValidationError.unknownAuthority(issuer: stranger.root.subject.description)) {
            try verifier.verify(chain: svid.chain, bundles: trusted.bundles)
        }
    }

    @Test("tampered signature")
    func tamperedSignature() throws {
        let pki = try TestPKI()
        let svid = try pki.authority.issueSVID(for: SPIFFEID("spiffe://example.org/x"))
        var der = try CertificateCoding.der(svid.leaf)
        der[der.count - 1] ^= 0x01
        let tampered = try Certificate(derEncoded: der)
        #expect(throws: X509SVIDValidationError.badSignature(subject: tampered.subject.description)) {
            try verifier.verify(chain: [tampered], bundles: pki.bundles)
        }
    }

    @Test("an intermediate that is not a CA, or lacks keyCertSign")
    func badSigner() throws {
        let pki = try TestPKI()
        for (isCA, keyCertSign) in [(false, true), (true, false)] {
            let intermediate = try pki.intermediate(isCA: isCA, keyCertSign: keyCertSign)
            let leaf = try pki.leaf(signer: (intermediate.key, intermediate.certificate.subject)).certificate
            #expect {
                try verifier.verify(chain: [leaf, intermediate.certificate], bundles: pki.bundles)
            } throws: { error in
                switch error as? X509SVIDValidationError {
                case .signerNotCA?: return !isCA
                case .signerMissingKeyCertSign?: return isCA && !keyCertSign
                default: return false
                }
            }
        }
    }

    @Test("malformed DER and an empty chain")
    func malformed() throws {
        let pki = try TestPKI()
        #expect(throws: X509SVIDValidationError.emptyChain) { try verifier.verify(derChain: [], bundles: pki.bundles) }
        #expect {
            try verifier.verify(derChain: [[0x30, 0x03, 0x02, 0x01]], bundles: pki.bundles)
        } throws: { error in
            if case .malformedCertificate(index: 0, _) = error as? X509SVIDValidationError { return true }
            return false
        }
    }

    @Test("X509SVID rejects a key that does not match the leaf, and reads PEM and DER")
    func svidConstruction() throws {
        let pki = try TestPKI()
        let svid = try pki.authority.issueSVID(for: SPIFFEID("spiffe://example.org/x"))
        #expect(throws: X509SVIDError.keyMismatch) { try X509SVID(chain: svid.chain, privateKey: P256.Signing.PrivateKey()) }
        let fromPEM = try X509SVID(chainPEM: svid.chainPEM(), privateKeyPEM: svid.privateKeyPEM)
        #expect(fromPEM == svid)
        let fromDER = try X509SVID(chainDER: svid.chainDER(), privateKeyDER: Array(svid.privateKey.derRepresentation))
        #expect(fromDER == svid)
        #expect(throws: CertificateDecodingError.self) { try X509SVID(chainPEM: "garbage", privateKeyPEM: svid.privateKeyPEM) }
        #expect(throws: CertificateDecodingError.self) {
            try X509SVID(chainPEM: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", privateKeyPEM: svid.privateKeyPEM)
        }
        #expect(throws: CertificateDecodingError.self) { try X509SVID(chainDER: [0x30, 0x82, 0xff], privateKeyDER: []) }
    }
}
