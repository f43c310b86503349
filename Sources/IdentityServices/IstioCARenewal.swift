import Logging
import MeshIdentity
import NIOConcurrencyHelpers
import X509

/// An ``SVIDProvider`` that renews the holder's own SVID at the Istio CA,
/// authenticated over SPIFFE mTLS by the newest SVID it holds (first the one
/// it starts with). A node proxy keeps its node credential alive this way; the
/// CA decides whether the identity may still be renewed.
///
/// ```swift
/// let source = SVIDSource(provider: IstioCARenewal(credential: svid, host: "istiod", port: 15012, bundles: bundles, server: .exactly(istiodID)))
/// source.publish(svid)
/// Task { try await source.run() }   // renews at half-life
/// ```
public final class IstioCARenewal: SVIDProvider, Sendable {
    /// The CA replicas (see ``IstioCAClient``).
    public let servers: [IstioCAClient.Server]
    public let bundles: TrustBundleStore
    /// Who the CA must be.
    public let server: SPIFFEAuthorizer
    private let logger: Logger
    private let latest: NIOLockedValueBox<X509SVID>
    private let onRoots: (@Sendable ([Certificate]) -> Void)?

    /// Renews at one CA.
    public convenience init(credential: X509SVID, host: String, port: Int, bundles: TrustBundleStore, server: SPIFFEAuthorizer,
                            logger: Logger = Logger(label: "swift-mesh.istio-ca-renewal")) {
        self.init(credential: credential, servers: [IstioCAClient.Server(host: host, port: port)], bundles: bundles, server: server, logger: logger)
    }

    /// Renews at CA replicas, failing over between them; `onRoots` hears the roots of each answer (see ``IstioCAClient/onRoots``).
    public init(credential: X509SVID, servers: [IstioCAClient.Server], bundles: TrustBundleStore, server: SPIFFEAuthorizer,
                onRoots: (@Sendable ([Certificate]) -> Void)? = nil, logger: Logger = Logger(label: "swift-mesh.istio-ca-renewal")) {
        self.onRoots = onRoots
        self.latest = NIOLockedValueBox(credential)
        self.servers = servers
        self.bundles = bundles
        self.server = server
        self.logger = logger
    }

    public func fetchSVID() async throws -> X509SVID {
        let credential = latest.withLockedValue { $0 }
        let security = try SPIFFEGRPCSecurity.client(svids: SVIDSource(svid: credential), bundles: bundles, authorizer: server, logger: logger)
        let renewed = try await IstioCAClient(servers: servers, identity: credential.id, transportSecurity: security, onRoots: onRoots).fetchSVID()
        latest.withLockedValue { $0 = renewed }
        return renewed
    }
}
