import Foundation
import X509

/// Validates certificate chains as X509-SVIDs against a ``TrustBundleSet``.
///
/// The checks follow the X509-SVID specification: exactly one URI SAN holding
/// a valid SPIFFE ID, a leaf that is not a CA, has digitalSignature and lacks
/// keyCertSign/cRLSign; signing certificates that are CAs with keyCertSign;
/// every certificate within its validity window; and a chain of verified
/// signatures up to a root in the bundle of the ID's own trust domain.
public struct X509SVIDVerifier: Sendable {
    /// The longest chain accepted (leaf, intermediates and root).
    public var maximumChainLength: Int = 8

    public init() {}

    /// The result of a successful verification.
    public struct Verified: Sendable, Hashable {
        /// The verified SPIFFE ID of the leaf.
        public var id: SPIFFEID
        /// The verified path, leaf first, ending with the trusted root.
        public var path: [Certificate]
    }

    /// Verifies `chain` (leaf first, as presented by a peer) against `bundles` at time `now`.
    public func verify(chain: [Certificate], bundles: TrustBundleSet, now: Date = Date()) throws(X509SVIDValidationError) -> Verified {
        guard let leaf = chain.first else { throw .emptyChain }
        let id = try Self.spiffeID(ofLeaf: leaf)
        try Self.checkLeafUsage(leaf)
        try Self.checkValidity(leaf, now: now)
        guard let bundle = bundles[id.trustDomain], !bundle.authorities.isEmpty else {
            throw .noBundleForTrustDomain(id.trustDomain)
        }
        let path = try buildPath(leaf: leaf, intermediates: Array(chain.dropFirst()), roots: bundle.authorities, now: now)
        return Verified(id: id, path: path)
    }

    /// Verifies a chain given as DER blobs, the form a TLS stack hands over.
    public func verify(derChain: [[UInt8]], bundles: TrustBundleSet, now: Date = Date()) throws(X509SVIDValidationError) -> Verified {
        var chain: [Certificate] = []
        chain.reserveCapacity(derChain.count)
        for (index, der) in derChain.enumerated() {
            do {
                chain.append(try Certificate(derEncoded: der))
            } catch {
                throw .malformedCertificate(index: index, reason: String(describing: error))
            }
        }
        return try verify(chain: chain, bundles: bundles, now: now)
    }

    private func buildPath(
        leaf: Certificate,
        intermediates: [Certificate],
        roots: [Certificate],
        now: Date
    ) throws(X509SVIDValidationError) -> [Certificate] {
        var path = [leaf]
        var current = leaf
        while path.count < maximumChainLength {
            let rootCandidates = roots.filter { $0.subject == current.issuer }
            if !rootCandidates.isEmpty {
                guard let root = rootCandidates.first(where: { $0.publicKey.isValidSignature(current.signature, for: current) })
                else { throw .badSignature(subject: current.subject.description) }
                try Self.checkSigner(root)
                try Self.checkValidity(root, now: now)
                if root != current { path.append(root) }
                return path
            }
            guard let next = intermediates.first(where: { $0.subject == current.issuer && !path.contains($0) }) else {
                throw .unknownAuthority(issuer: current.issuer.description)
            }
            guard next.publicKey.isValidSignature(current.signature, for: current) else {
                throw .badSignature(subject: current.subject.description)
            }
            try Self.checkSigner(next)
            try Self.checkValidity(next, now: now)
            path.append(next)
            current = next
        }
        throw .chainTooLong(limit: maximumChainLength)
    }

    /// The SPIFFE ID in a leaf's single URI SAN: exactly one URI SAN, a valid SPIFFE ID with a
    /// path. Neither the key usage, the validity nor the chain is checked.
    public static func spiffeID(ofLeaf leaf: Certificate) throws(X509SVIDValidationError) -> SPIFFEID {
        let uris: [String]
        do {
            uris = try leaf.extensions.uriSANs()
        } catch {
            throw .malformedExtension(subject: leaf.subject.description, reason: "subjectAltName: \(error)")
        }
        guard let uri = uris.first else { throw .missingURISAN }
        guard uris.count == 1 else { throw .multipleURISANs(count: uris.count) }
        let id: SPIFFEID
        do {
            id = try SPIFFEID(uri)
        } catch {
            throw .invalidSPIFFEID(error)
        }
        guard !id.isTrustDomainID else { throw .leafIDHasNoPath(id) }
        return id
    }

    /// The basicConstraints and keyUsage extensions the X509-SVID rules look at.
    private static func constraintsAndUsage(of certificate: Certificate) throws(X509SVIDValidationError) -> (BasicConstraints?, KeyUsage?) {
        do {
            return (try certificate.extensions.basicConstraints, try certificate.extensions.keyUsage)
        } catch {
            throw .malformedExtension(subject: certificate.subject.description, reason: String(describing: error))
        }
    }

    private static func checkLeafUsage(_ leaf: Certificate) throws(X509SVIDValidationError) {
        let (constraints, usage) = try constraintsAndUsage(of: leaf)
        if case .isCertificateAuthority = constraints { throw .leafIsCA }
        guard let usage, usage.digitalSignature else { throw .leafMissingDigitalSignature }
        if usage.keyCertSign { throw .leafHasKeyCertSign }
        if usage.cRLSign { throw .leafHasCRLSign }
    }

    private static func checkSigner(_ signer: Certificate) throws(X509SVIDValidationError) {
        let (constraints, usage) = try constraintsAndUsage(of: signer)
        guard case .isCertificateAuthority = constraints else { throw .signerNotCA(subject: signer.subject.description) }
        guard usage?.keyCertSign == true else { throw .signerMissingKeyCertSign(subject: signer.subject.description) }
    }

    private static func checkValidity(_ certificate: Certificate, now: Date) throws(X509SVIDValidationError) {
        if now < certificate.notValidBefore {
            throw .notYetValid(subject: certificate.subject.description, notBefore: certificate.notValidBefore)
        }
        if now > certificate.notValidAfter {
            throw .expired(subject: certificate.subject.description, notAfter: certificate.notValidAfter)
        }
    }
}
