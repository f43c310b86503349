import Foundation
import X509

/// The X.509 authorities of one trust domain, with the SPIFFE bundle metadata.
///
/// Serialized in the SPIFFE bundle format (a JWK set) by ``TrustBundleCoding``.
public struct TrustBundle: Sendable, Hashable {
    /// The trust domain these authorities speak for.
    public var trustDomain: TrustDomain
    /// The X.509 root (or intermediate) authorities trusted for this domain.
    public var authorities: [Certificate]
    /// `spiffe_sequence`: increases with every change of the bundle.
    public var sequenceNumber: UInt64?
    /// `spiffe_refresh_hint` in seconds: how often consumers should refresh.
    public var refreshHint: Int?

    public init(trustDomain: TrustDomain, authorities: [Certificate], sequenceNumber: UInt64? = nil, refreshHint: Int? = nil) {
        self.trustDomain = trustDomain
        self.authorities = authorities
        self.sequenceNumber = sequenceNumber
        self.refreshHint = refreshHint
    }

    /// Reads PEM authorities (`bundle.pem`).
    public init(trustDomain: TrustDomain, pem: String) throws {
        self.init(trustDomain: trustDomain, authorities: try CertificateCoding.certificates(pem: pem))
    }

    /// The authorities as PEM.
    public func authoritiesPEM() throws -> String { try CertificateCoding.pem(authorities) }
}

/// Trust bundles for several trust domains (SPIFFE federation), keyed by trust domain.
///
/// A chain is only ever checked against the bundle of its own SPIFFE ID's trust domain.
public struct TrustBundleSet: Sendable, Hashable {
    private var bundles: [TrustDomain: TrustBundle]

    public init(_ bundles: [TrustBundle] = []) {
        self.bundles = [:]
        for bundle in bundles { insert(bundle) }
    }

    /// Adds or replaces the bundle of `bundle.trustDomain`.
    public mutating func insert(_ bundle: TrustBundle) { bundles[bundle.trustDomain] = bundle }

    /// Removes a trust domain's bundle.
    public mutating func remove(_ trustDomain: TrustDomain) { bundles[trustDomain] = nil }

    public subscript(trustDomain: TrustDomain) -> TrustBundle? { bundles[trustDomain] }

    /// The trust domains with a bundle, sorted.
    public var trustDomains: [TrustDomain] { bundles.keys.sorted() }

    /// All bundles, sorted by trust domain.
    public var all: [TrustBundle] { trustDomains.compactMap { bundles[$0] } }
}
