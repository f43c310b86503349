import MeshIdentity

/// A CA for example.org with a server and a client workload identity: the
/// fixture of the tests that run real mTLS between two Swift endpoints.
public struct ServerClientPKI: Sendable {
    public let ca: CertificateAuthority
    public let serverID: SPIFFEID
    public let clientID: SPIFFEID
    public let bundles: TrustBundleStore

    public init() throws {
        ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        serverID = try SPIFFEID("spiffe://example.org/ns/default/sa/server")
        clientID = try SPIFFEID("spiffe://example.org/ns/default/sa/client")
        bundles = TrustBundleStore(ca.trustBundle)
    }

    /// A fixed SVID for `id`, issued now by `clock`.
    public func source(_ id: SPIFFEID, clock: any MeshClock = SystemMeshClock()) throws -> SVIDSource {
        SVIDSource(svid: try ca.issueSVID(for: id, now: clock.now), clock: clock)
    }

    /// mTLS for `id`; servers built from it admit peers that `authorizer` allows.
    public func tls(_ id: SPIFFEID, authorizer: SPIFFEAuthorizer = .anyVerified, clock: any MeshClock = SystemMeshClock()) throws -> MeshTLS {
        MeshTLS(
            svids: try source(id, clock: clock),
            bundles: bundles,
            configuration: MeshTLSConfiguration(serverAuthorizer: authorizer),
            clock: clock
        )
    }
}
