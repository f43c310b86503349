import Foundation
import Crypto

/// Something that can obtain a fresh X509-SVID: a local CA, the SPIFFE
/// Workload API, or the Istio CA. ``SVIDSource`` calls it to renew.
public protocol SVIDProvider: Sendable {
    /// Obtains a new SVID. Errors are retried by the caller with backoff.
    func fetchSVID() async throws -> X509SVID
}

/// An ``SVIDProvider`` that signs SVIDs for one ID with an in-process ``CertificateAuthority``.
///
/// Each call generates a new P-256 key and issues a leaf with `ttl`.
public struct LocalCAProvider: SVIDProvider {
    /// The issuing CA.
    public var authority: CertificateAuthority
    /// The identity to issue for.
    public var id: SPIFFEID
    /// The lifetime of each SVID.
    public var ttl: TimeInterval
    /// The clock that dates the certificates.
    public var clock: any MeshClock

    public init(authority: CertificateAuthority, id: SPIFFEID, ttl: TimeInterval = CertificateAuthority.defaultTTL, clock: any MeshClock = SystemMeshClock()) {
        self.authority = authority
        self.id = id
        self.ttl = ttl
        self.clock = clock
    }

    public func fetchSVID() async throws -> X509SVID {
        try authority.issueSVID(for: id, ttl: ttl, now: clock.now)
    }
}
