import MeshIdentity
import Synchronization

/// Decides whether an authenticated caller of the Istio CA may obtain a
/// certificate for an identity: another one (`ImpersonatedIdentity`), as
/// istiod lets a node's ztunnel ask for the identities of the pods on its node
/// only, or its own (a renewal, `requested == caller`), which a policy may
/// refuse once the identity is gone.
public protocol IstioCAImpersonationPolicy: Sendable {
    /// Nil when `caller` may obtain a certificate for `requested`; otherwise
    /// the reason it may not, which is logged and returned to the caller.
    func refusal(caller: SPIFFEID, requested: SPIFFEID) async -> String?
}

/// A fixed set of callers that may request any identity.
public struct FixedImpersonators: IstioCAImpersonationPolicy {
    public var impersonators: Set<SPIFFEID>

    public init(_ impersonators: Set<SPIFFEID>) {
        self.impersonators = impersonators
    }

    public func refusal(caller: SPIFFEID, requested: SPIFFEID) async -> String? {
        caller == requested || impersonators.contains(caller) ? nil : "\(caller) may not request certificates for other identities"
    }
}

/// Counters of an Istio CA, named after istiod's metrics
/// (`citadel_server_csr_count`, `citadel_server_success_cert_issuance_count`).
public final class IstioCACounters: Sendable {
    /// A point-in-time copy.
    public struct Values: Sendable, Hashable {
        /// CSRs received (`citadel_server_csr_count`).
        public var csrs: Int
        /// Certificates issued (`citadel_server_success_cert_issuance_count`).
        public var issued: Int
        /// Requests refused because the caller may not have the identity.
        public var impersonationRefusals: Int
        /// CSRs refused as malformed or not matching the identity.
        public var csrRefusals: Int
    }

    private let csrs = Atomic<Int>(0)
    private let issued = Atomic<Int>(0)
    private let impersonationRefusals = Atomic<Int>(0)
    private let csrRefusals = Atomic<Int>(0)

    public init() {}

    public func snapshot() -> Values {
        Values(csrs: csrs.load(ordering: .relaxed), issued: issued.load(ordering: .relaxed),
               impersonationRefusals: impersonationRefusals.load(ordering: .relaxed), csrRefusals: csrRefusals.load(ordering: .relaxed))
    }

    func csrReceived() { csrs.add(1, ordering: .relaxed) }
    func certificateIssued() { issued.add(1, ordering: .relaxed) }
    func impersonationRefused() { impersonationRefusals.add(1, ordering: .relaxed) }
    func csrRefused() { csrRefusals.add(1, ordering: .relaxed) }
}
