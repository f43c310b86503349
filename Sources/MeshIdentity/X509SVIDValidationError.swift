import Foundation

/// Why a certificate chain is not a valid X509-SVID for a set of trust bundles.
///
/// One case per rule of the X509-SVID specification, so callers (and logs) can
/// tell an expired certificate from an untrusted one.
public enum X509SVIDValidationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The peer presented no certificate.
    case emptyChain
    /// A certificate could not be parsed.
    case malformedCertificate(index: Int, reason: String)
    /// The leaf has no URI SAN.
    case missingURISAN
    /// The leaf has more than one URI SAN.
    case multipleURISANs(count: Int)
    /// The leaf's URI SAN is not a valid SPIFFE ID.
    case invalidSPIFFEID(SPIFFEIDError)
    /// The leaf's SPIFFE ID is a trust domain ID (no path), which the spec reserves for CAs.
    case leafIDHasNoPath(SPIFFEID)
    /// The leaf is a CA certificate.
    case leafIsCA
    /// The leaf has no key usage extension or lacks digitalSignature.
    case leafMissingDigitalSignature
    /// The leaf carries keyCertSign.
    case leafHasKeyCertSign
    /// The leaf carries cRLSign.
    case leafHasCRLSign
    /// A signing certificate is not a CA.
    case signerNotCA(subject: String)
    /// A signing certificate lacks keyCertSign.
    case signerMissingKeyCertSign(subject: String)
    /// A certificate's validity starts in the future.
    case notYetValid(subject: String, notBefore: Date)
    /// A certificate has expired.
    case expired(subject: String, notAfter: Date)
    /// No trust bundle is known for the ID's trust domain.
    case noBundleForTrustDomain(TrustDomain)
    /// The chain does not lead to a root of the trust domain's bundle.
    case unknownAuthority(issuer: String)
    /// A signature in the chain does not verify.
    case badSignature(subject: String)
    /// The chain is longer than the verifier accepts.
    case chainTooLong(limit: Int)
    /// A certificate extension could not be decoded.
    case malformedExtension(subject: String, reason: String)

    public var description: String {
        switch self {
        case .emptyChain: "no certificate presented"
        case .malformedCertificate(let index, let reason): "certificate \(index + 1) is malformed: \(reason)"
        case .missingURISAN: "the leaf certificate has no URI SAN (an X509-SVID needs exactly one)"
        case .multipleURISANs(let count): "the leaf certificate has \(count) URI SANs (an X509-SVID needs exactly one)"
        case .invalidSPIFFEID(let error): "the leaf URI SAN is not a SPIFFE ID: \(error)"
        case .leafIDHasNoPath(let id): "the leaf SPIFFE ID \(id) has no path; trust domain IDs identify CAs, not workloads"
        case .leafIsCA: "the leaf certificate is a CA (basicConstraints cA=true)"
        case .leafMissingDigitalSignature: "the leaf certificate lacks the digitalSignature key usage"
        case .leafHasKeyCertSign: "the leaf certificate has the keyCertSign key usage"
        case .leafHasCRLSign: "the leaf certificate has the cRLSign key usage"
        case .signerNotCA(let subject): "signing certificate \(subject) is not a CA"
        case .signerMissingKeyCertSign(let subject): "signing certificate \(subject) lacks the keyCertSign key usage"
        case .notYetValid(let subject, let date): "certificate \(subject) is not valid before \(date)"
        case .expired(let subject, let date): "certificate \(subject) expired at \(date)"
        case .noBundleForTrustDomain(let td): "no trust bundle for trust domain \(td)"
        case .unknownAuthority(let issuer): "the chain does not lead to a trusted root (issuer \(issuer) unknown)"
        case .badSignature(let subject): "the signature of certificate \(subject) does not verify"
        case .chainTooLong(let limit): "the certificate chain is longer than \(limit)"
        case .malformedExtension(let subject, let reason): "certificate \(subject) has a malformed extension: \(reason)"
        }
    }
}
