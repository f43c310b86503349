import Logging
import MeshIdentity
import NIOCertificateReloading
import NIOSSL
import NIOConcurrencyHelpers

/// Hands NIOSSL the SVID that is current in an ``SVIDSource`` on every TLS
/// handshake a server accepts, so a long-running gRPC server (an xDS server,
/// the Istio CA) presents the rotated certificate to new connections without a
/// restart. Open connections keep the certificate they were established with.
///
/// The certificate and key are converted once per SVID generation.
public final class SVIDCertificateReloader: CertificateReloader {
    private let svids: SVIDSource
    private let logger: Logger
    private let cache = NIOLockedValueBox<(generation: UInt64, override: NIOSSLContextConfigurationOverride)?>(nil)

    /// Follows `svids`.
    public init(svids: SVIDSource, logger: Logger = Logger(label: "swift-mesh.grpc-mtls")) {
        self.svids = svids
        self.logger = logger
    }

    public var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride {
        guard let (svid, generation) = svids.currentWithGeneration else { return .noChanges }
        if let cached = cache.withLockedValue({ $0 }), cached.generation == generation { return cached.override }
        do {
            let (chain, key) = try svid.nioSSLSources()
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = chain
            override.privateKey = key
            cache.withLockedValue { $0 = (generation, override) }
            logger.info("serving a new SVID on new connections", metadata: ["id": "\(svid.id)", "generation": "\(generation)"])
            return override
        } catch {
            logger.error("cannot load the current SVID into TLS; keeping the previous one", metadata: ["error": "\(error)"])
            return cache.withLockedValue { $0?.override } ?? .noChanges
        }
    }
}
