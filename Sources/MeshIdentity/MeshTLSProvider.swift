/// Where a connection's TLS identity comes from: one ``MeshTLS`` for every
/// connection (a node, or a single workload), or one per workload identity (a
/// node proxy that presents each local workload's own SVID).
///
/// HBONE clients ask for the source workload's identity, servers for the
/// destination workload's; a provider may fetch the SVID on first use.
public protocol MeshTLSProvider: Sendable {
    /// The ``MeshTLS`` that presents `identity`'s SVID; nil asks for ``defaultIdentity``.
    func meshTLS(for identity: SPIFFEID?) async throws -> MeshTLS
    /// The identity used when a connection names none (nil when each must name one).
    var defaultIdentity: SPIFFEID? { get }
    /// The trust domain of the identities (peers are authorized against it by default).
    var trustDomain: TrustDomain { get throws }
}

extension MeshTLS: MeshTLSProvider {
    /// This MeshTLS, whatever identity is asked for: it has only its own SVID.
    public func meshTLS(for identity: SPIFFEID?) async throws -> MeshTLS { self }

    /// The current SVID's ID.
    public var defaultIdentity: SPIFFEID? { svids.current?.id }

    /// The current SVID's trust domain.
    public var trustDomain: TrustDomain {
        get throws { try svids.requireCurrent().id.trustDomain }
    }
}
