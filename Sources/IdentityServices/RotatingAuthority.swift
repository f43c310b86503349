import Foundation
import MeshIdentity
import NIOConcurrencyHelpers
import X509

/// The CA an Istio CA server signs with and the roots it tells clients to
/// trust, replaceable while serving. Root rotation goes through three states:
/// a new root trusted beside the old one (still signing with the old),
/// signing with the new one (both trusted), the old one dropped.
///
/// ```swift
/// let authority = RotatingAuthority(signer: try CADirectory(path: dir).load())
/// let service = IstioCAServer.service(authority: authority, authenticator: MTLSCallerAuthenticator())
/// authority.replace(signer: newSigner, roots: [newRoot, oldRoot])   // clients learn both with their next certificate
/// ```
public final class RotatingAuthority: Sendable {
    /// One consistent state: who signs, and what is trusted.
    public struct Snapshot: Sendable {
        /// The CA that signs.
        public let signer: CertificateAuthority
        /// The roots clients are told to trust: the signer's root first, then the others.
        public let roots: [Certificate]
    }

    private let state: NIOLockedValueBox<Snapshot>

    /// `roots` default to the signer's own root; the signer's root is always among them, first.
    public init(signer: CertificateAuthority, roots: [Certificate] = []) {
        state = NIOLockedValueBox(Self.snapshot(signer: signer, roots: roots))
    }

    /// The current signer and roots.
    public var current: Snapshot { state.withLockedValue { $0 } }

    /// Replaces the signer and the roots (one step, seen whole by every later request).
    public func replace(signer: CertificateAuthority, roots: [Certificate]) {
        let next = Self.snapshot(signer: signer, roots: roots)
        state.withLockedValue { $0 = next }
    }

    /// An ``SVIDProvider`` issuing `id` from whichever CA signs at the time (the serving
    /// certificate of a control plane whose CA rotates).
    public func provider(for id: SPIFFEID, ttl: TimeInterval) -> any SVIDProvider {
        RotatingAuthorityProvider(authority: self, id: id, ttl: ttl)
    }

    private static func snapshot(signer: CertificateAuthority, roots: [Certificate]) -> Snapshot {
        let own = signer.chain[signer.chain.count - 1]
        return Snapshot(signer: signer, roots: [own] + roots.filter { $0 != own })
    }
}

private struct RotatingAuthorityProvider: SVIDProvider {
    let authority: RotatingAuthority
    let id: SPIFFEID
    let ttl: TimeInterval

    func fetchSVID() async throws -> X509SVID {
        try authority.current.signer.issueSVID(for: id, ttl: ttl)
    }
}
