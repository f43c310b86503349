import Logging
import MeshIdentity
import NIOConcurrencyHelpers

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
    public let host: String
    public let port: Int
    public let bundles: TrustBundleStore
    /// Who the CA must be.
    public let server: SPIFFEAuthorizer
    private let logger: Logger
    private let latest: NIOLockedValueBox<X509SVID>

    public init(credential: X509SVID, host: String, port: Int, bundles: TrustBundleStore, server: SPIFFEAuthorizer,
                logger: Logger = Logger(label: "swift-mesh.istio-ca-renewal")) {
        self.latest = NIOLockedValueBox(credential)
        self.host = host
        self.port = port
        self.bundles = bundles
        self.server = server
        self.logger = logger
    }

    public func fetchSVID() async throws -> X509SVID {
        let credential = latest.withLockedValue { $0 }
        let security = try SPIFFEGRPCSecurity.client(svids: SVIDSource(svid: credential), bundles: bundles, authorizer: server, logger: logger)
        let renewed = try await IstioCAClient(host: host, port: port, identity: credential.id, transportSecurity: security).fetchSVID()
        latest.withLockedValue { $0 = renewed }
        return renewed
    }
}
