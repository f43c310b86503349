import Foundation
import X509
import SwiftASN1
import Crypto

/// Errors of a ``CertificateAuthority``.
public enum CertificateAuthorityError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The CA certificate and key do not belong together.
    case keyMismatch
    /// The CA certificate is not a CA with keyCertSign.
    case notACertificateAuthority(String)
    /// The CSR's signature does not verify with its own public key.
    case csrSignatureInvalid
    /// The CSR carries no SPIFFE ID and none was supplied.
    case csrMissingSPIFFEID
    /// The CSR asks for more than one URI SAN.
    case csrMultipleURISANs(Int)
    /// The CSR's URI SAN is not a valid SPIFFE ID.
    case csrInvalidSPIFFEID(SPIFFEIDError)
    /// The requested ID differs from the one the caller may have.
    case csrIDMismatch(requested: SPIFFEID, allowed: SPIFFEID)
    /// The requested ID is in another trust domain than the CA's.
    case foreignTrustDomain(requested: TrustDomain, ca: TrustDomain)
    /// The requested ID is a trust domain ID; workloads need a path.
    case idHasNoPath(SPIFFEID)
    /// The TTL is zero or negative.
    case invalidTTL(TimeInterval)
    /// The CSR could not be decoded.
    case malformedCSR(String)
    /// No trust domain was given and the CA certificate names none in a `spiffe://<trust-domain>` URI SAN.
    case unknownTrustDomain(subject: String)

    public var description: String {
        switch self {
        case .keyMismatch: "the CA private key does not match the CA certificate"
        case .notACertificateAuthority(let subject): "\(subject) is not a CA certificate with keyCertSign"
        case .csrSignatureInvalid: "the CSR signature does not verify"
        case .csrMissingSPIFFEID: "the CSR has no SPIFFE ID URI SAN"
        case .csrMultipleURISANs(let count): "the CSR requests \(count) URI SANs; an SVID has exactly one"
        case .csrInvalidSPIFFEID(let error): "the CSR URI SAN is not a SPIFFE ID: \(error)"
        case .csrIDMismatch(let requested, let allowed): "the CSR requests \(requested) but the caller is \(allowed)"
        case .foreignTrustDomain(let requested, let ca): "cannot issue for trust domain \(requested): this CA signs for \(ca)"
        case .idHasNoPath(let id): "\(id) is a trust domain ID; a workload SVID needs a path"
        case .invalidTTL(let ttl): "invalid TTL \(ttl) s: must be positive"
        case .malformedCSR(let reason): "malformed CSR: \(reason)"
        case .unknownTrustDomain(let subject): "\(subject) has no spiffe://<trust-domain> URI SAN; give the trust domain"
        }
    }
}

/// A SPIFFE certificate authority that issues X509-SVIDs for one trust domain.
///
/// It is either a self-signed root (``selfSigned(trustDomain:validity:now:)``)
/// or an intermediate built from an existing key and chain
/// (``init(chain:privateKey:trustDomain:)``). Issued leaves are ECDSA P-256
/// with SHA-256 signatures, random 159-bit serials, a single URI SAN,
/// digitalSignature key usage and serverAuth+clientAuth EKU.
///
/// ```swift
/// let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
/// let svid = try ca.issueSVID(for: SPIFFEID("spiffe://example.org/web"))
/// ```
public struct CertificateAuthority: Sendable {
    /// The trust domain this CA signs for.
    public let trustDomain: TrustDomain
    /// The CA's chain: its own certificate first, then its issuers up to the root.
    public let chain: [Certificate]
    private let privateKey: P256.Signing.PrivateKey

    /// The default SVID lifetime (24 h).
    public static let defaultTTL: TimeInterval = 24 * 3600

    /// The CA's own certificate.
    public var certificate: Certificate { chain[0] }

    /// The CA's private key as PKCS#8 PEM (for persisting it; keep it secret).
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// The trust bundle consumers need: the root of the chain.
    public var trustBundle: TrustBundle {
        TrustBundle(trustDomain: trustDomain, authorities: [chain[chain.count - 1]], sequenceNumber: 1)
    }

    /// Builds a CA from an existing chain (own certificate first) and its private key.
    public init(chain: [Certificate], privateKey: P256.Signing.PrivateKey, trustDomain: TrustDomain) throws {
        guard let own = chain.first else { throw CertificateAuthorityError.notACertificateAuthority("(empty chain)") }
        guard Certificate.PublicKey(privateKey.publicKey) == own.publicKey else { throw CertificateAuthorityError.keyMismatch }
        let constraints = try own.extensions.basicConstraints
        let usage = try own.extensions.keyUsage
        guard case .isCertificateAuthority = constraints, usage?.keyCertSign == true else {
            throw CertificateAuthorityError.notACertificateAuthority(own.subject.description)
        }
        self.chain = chain
        self.privateKey = privateKey
        self.trustDomain = trustDomain
    }

    /// Loads a CA from PEM (`ca.pem` chain, `ca.key` PKCS#8). Without `trustDomain`, the one
    /// the CA certificate names in its `spiffe://<trust-domain>` URI SAN (``trustDomain(ofAuthority:)``).
    public init(chainPEM: String, privateKeyPEM: String, trustDomain: TrustDomain? = nil) throws {
        let chain = try CertificateCoding.certificates(pem: chainPEM)
        guard let trustDomain = trustDomain ?? chain.first.flatMap(Self.trustDomain(ofAuthority:)) else {
            throw CertificateAuthorityError.unknownTrustDomain(subject: chain.first?.subject.description ?? "(empty chain)")
        }
        try self.init(chain: chain, privateKey: CertificateCoding.privateKey(pem: privateKeyPEM), trustDomain: trustDomain)
    }

    /// The CA chain as PEM.
    public func chainPEM() throws -> String { try CertificateCoding.pem(chain) }

    /// Creates a new self-signed root CA with a fresh P-256 key.
    public static func selfSigned(
        trustDomain: TrustDomain,
        validity: TimeInterval = 365 * 24 * 3600,
        now: Date = Date()
    ) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let certificate = try makeCACertificate(
            role: "root", trustDomain: trustDomain, key: key, issuer: nil,
            notBefore: now.addingTimeInterval(-60), notAfter: now.addingTimeInterval(validity)
        )
        return try CertificateAuthority(chain: [certificate], privateKey: key, trustDomain: trustDomain)
    }

    /// Issues an intermediate CA for the same trust domain, signed by this CA.
    public func makeIntermediate(validity: TimeInterval = 30 * 24 * 3600, now: Date = Date()) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let certificate = try Self.makeCACertificate(
            role: "intermediate", trustDomain: trustDomain, key: key, issuer: (certificate, privateKey),
            notBefore: now.addingTimeInterval(-60),
            notAfter: min(now.addingTimeInterval(validity), certificate.notValidAfter)
        )
        return try CertificateAuthority(chain: [certificate] + chain, privateKey: key, trustDomain: trustDomain)
    }

    /// A CA certificate for `key`, self-signed when `issuer` is nil.
    private static func makeCACertificate(
        role: String,
        trustDomain: TrustDomain,
        key: P256.Signing.PrivateKey,
        issuer: (certificate: Certificate, key: P256.Signing.PrivateKey)?,
        notBefore: Date,
        notAfter: Date
    ) throws -> Certificate {
        let publicKey = Certificate.PublicKey(key.publicKey)
        // The key identifier in the name keeps two CAs of one trust domain apart.
        let keyID = SubjectKeyIdentifier(hash: publicKey).keyIdentifier.prefix(4).map { String(format: "%02x", $0) }.joined()
        let subject = try DistinguishedName {
            OrganizationName(trustDomain.name)
            CommonName("swift-mesh \(role) CA \(keyID)")
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectAlternativeNames([.uniformResourceIdentifier(trustDomain.id.description)])
            SubjectKeyIdentifier(hash: publicKey)
            if let issuer {
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: issuer.certificate.publicKey).keyIdentifier)
            }
        }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: issuer?.certificate.subject ?? subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(issuer?.key ?? key)
        )
    }

    /// Issues a leaf for `id` and `publicKey`; returns the chain to present (leaf, then this CA's
    /// chain without the root).
    public func issue(id: SPIFFEID, publicKey: P256.Signing.PublicKey, ttl: TimeInterval = defaultTTL, now: Date = Date()) throws -> [Certificate] {
        guard id.trustDomain == trustDomain else {
            throw CertificateAuthorityError.foreignTrustDomain(requested: id.trustDomain, ca: trustDomain)
        }
        guard !id.isTrustDomainID else { throw CertificateAuthorityError.idHasNoPath(id) }
        guard ttl > 0 else { throw CertificateAuthorityError.invalidTTL(ttl) }
        let leafKey = Certificate.PublicKey(publicKey)
        let notAfter = min(now.addingTimeInterval(ttl), certificate.notValidAfter)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true, keyAgreement: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectAlternativeNames([.uniformResourceIdentifier(id.description)])
            SubjectKeyIdentifier(hash: leafKey)
            AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier)
        }
        let leaf = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: leafKey,
            notValidBefore: now.addingTimeInterval(-60),
            notValidAfter: notAfter,
            issuer: certificate.subject,
            subject: try DistinguishedName { OrganizationName(trustDomain.name) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(privateKey)
        )
        return [leaf] + chain.dropLast()
    }

    /// Issues an SVID with a freshly generated key.
    public func issueSVID(for id: SPIFFEID, ttl: TimeInterval = defaultTTL, now: Date = Date()) throws -> X509SVID {
        let key = P256.Signing.PrivateKey()
        return try X509SVID(chain: issue(id: id, publicKey: key.publicKey, ttl: ttl, now: now), privateKey: key)
    }

    /// Issues a leaf from a PKCS#10 CSR. The CSR's signature is checked and its URI SAN
    /// validated; when `allowedID` is given, the CSR must request that ID (or none, and
    /// then `allowedID` is used).
    public func issue(
        csr: CertificateSigningRequest,
        allowedID: SPIFFEID? = nil,
        ttl: TimeInterval = defaultTTL,
        now: Date = Date()
    ) throws -> [Certificate] {
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw CertificateAuthorityError.csrSignatureInvalid
        }
        let requested = try Self.requestedID(in: csr)
        let id: SPIFFEID
        switch (requested, allowedID) {
        case (nil, nil): throw CertificateAuthorityError.csrMissingSPIFFEID
        case (let r?, let a?) where r != a: throw CertificateAuthorityError.csrIDMismatch(requested: r, allowed: a)
        case (let r?, _): id = r
        case (nil, let a?): id = a
        }
        guard let key = P256.Signing.PublicKey(csr.publicKey) else {
            throw CertificateAuthorityError.malformedCSR("only ECDSA P-256 keys are accepted")
        }
        return try issue(id: id, publicKey: key, ttl: ttl, now: now)
    }

    /// Issues a leaf from a PEM or DER CSR.
    public func issue(csrPEM: String, allowedID: SPIFFEID? = nil, ttl: TimeInterval = defaultTTL, now: Date = Date()) throws -> [Certificate] {
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(pemEncoded: csrPEM)
        } catch {
            throw CertificateAuthorityError.malformedCSR(String(describing: error))
        }
        return try issue(csr: csr, allowedID: allowedID, ttl: ttl, now: now)
    }

    /// The trust domain a CA certificate speaks for: its `spiffe://<trust-domain>` URI SAN
    /// (which this CA writes into its own certificates), or nil when it has none.
    public static func trustDomain(ofAuthority certificate: Certificate) -> TrustDomain? {
        guard let uris = try? certificate.extensions.uriSANs() else { return nil }
        return uris.lazy.compactMap { try? SPIFFEID($0) }.first { $0.isTrustDomainID }?.trustDomain
    }

    /// Builds a CSR for `id` signed by `privateKey` (what a workload sends to a CA).
    public static func makeCSR(id: SPIFFEID, privateKey: P256.Signing.PrivateKey) throws -> CertificateSigningRequest {
        let extensions = try Certificate.Extensions {
            SubjectAlternativeNames([.uniformResourceIdentifier(id.description)])
        }
        return try CertificateSigningRequest(
            version: .v1,
            subject: DistinguishedName(),
            privateKey: Certificate.PrivateKey(privateKey),
            attributes: CertificateSigningRequest.Attributes([
                try .init(ExtensionRequest(extensions: extensions))
            ]),
            signatureAlgorithm: .ecdsaWithSHA256
        )
    }

    private static func requestedID(in csr: CertificateSigningRequest) throws -> SPIFFEID? {
        let request: ExtensionRequest?
        do {
            request = try csr.attributes.extensionRequest
        } catch {
            throw CertificateAuthorityError.malformedCSR("extension request: \(error)")
        }
        guard let extensions = request?.extensions else { return nil }
        let uris = try extensions.uriSANs()
        guard let uri = uris.first else { return nil }
        guard uris.count == 1 else { throw CertificateAuthorityError.csrMultipleURISANs(uris.count) }
        do {
            return try SPIFFEID(uri)
        } catch {
            throw CertificateAuthorityError.csrInvalidSPIFFEID(error)
        }
    }
}
