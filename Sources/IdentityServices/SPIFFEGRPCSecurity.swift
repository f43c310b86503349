import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import MeshIdentity
import NIOCore
import NIOSSL
import X509

/// gRPC transport security with SPIFFE mutual TLS: each side presents its
/// X509-SVID and verifies the peer's against SPIFFE trust bundles (no host
/// names, no system roots), then applies a ``SPIFFEAuthorizer``.
///
/// Use it for ``IstioCAServer``, ``IstioCAClient``, `XDSServer` and
/// `ADSClient`. Servers follow rotation: every new connection gets the SVID
/// current in the `SVIDSource` (``SVIDCertificateReloader``). A client
/// transport presents the SVID current when it is created; `ADSClient` builds
/// one per connection attempt, so it follows rotation too.
public enum SPIFFEGRPCSecurity {
    /// Server-side mTLS: clients must present an SVID that verifies against `bundles` and that `authorizer` allows.
    public static func server(
        svids: SVIDSource,
        bundles: TrustBundleStore,
        authorizer: SPIFFEAuthorizer,
        verifier: X509SVIDVerifier = X509SVIDVerifier(),
        logger: Logger = Logger(label: "swift-mesh.grpc-mtls")
    ) throws -> HTTP2ServerTransport.Posix.TransportSecurity {
        let (chain, key) = try sources(svids.requireCurrent())
        let verify = callback(bundles: bundles, authorizer: authorizer, verifier: verifier, role: "server", logger: logger)
        let reloader = SVIDCertificateReloader(svids: svids, logger: logger)
        return .mTLS(certificateChain: chain, privateKey: key) { config in
            config.certificateReloader = reloader
            config.clientCertificateVerification = .noHostnameVerification
            config.trustRoots = .certificates([])
            config.customVerificationCallback = verify
        }
    }

    /// Client-side mTLS: the server must present an SVID that verifies against `bundles` and that `authorizer` allows.
    public static func client(
        svids: SVIDSource,
        bundles: TrustBundleStore,
        authorizer: SPIFFEAuthorizer,
        verifier: X509SVIDVerifier = X509SVIDVerifier(),
        logger: Logger = Logger(label: "swift-mesh.grpc-mtls")
    ) throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        let (chain, key) = try sources(svids.requireCurrent())
        let verify = callback(bundles: bundles, authorizer: authorizer, verifier: verifier, role: "client", logger: logger)
        return .mTLS(certificateChain: chain, privateKey: key) { config in
            config.serverCertificateVerification = .noHostnameVerification
            config.trustRoots = .certificates([])
            config.customVerificationCallback = verify
        }
    }

    /// The SPIFFE ID of the peer of an RPC served over ``server(svids:bundles:authorizer:verifier:logger:)``;
    /// nil for plaintext connections.
    public static func peerID(of context: ServerContext) -> SPIFFEID? {
        guard let transport = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
              let leaf = transport.peerCertificate
        else { return nil }
        return try? X509SVIDVerifier.spiffeID(ofLeaf: leaf)
    }

    private static func sources(_ svid: X509SVID) throws -> ([TLSConfig.CertificateSource], TLSConfig.PrivateKeySource) {
        let chain = try svid.chain.map { TLSConfig.CertificateSource.bytes(try CertificateCoding.der($0), format: .der) }
        let key = TLSConfig.PrivateKeySource.bytes(Array(svid.privateKey.derRepresentation), format: .der)
        return (chain, key)
    }

    private static func callback(
        bundles: TrustBundleStore,
        authorizer: SPIFFEAuthorizer,
        verifier: X509SVIDVerifier,
        role: String,
        logger: Logger
    ) -> @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void {
        { certificates, promise in
            do {
                let der = try certificates.map { try $0.toDERBytes() }
                let verified = try verifier.verify(derChain: der, bundles: bundles.current)
                try authorizer.authorize(verified.id)
                promise.succeed(.certificateVerified(VerificationMetadata(ValidatedCertificateChain(certificates))))
            } catch {
                logger.warning("mTLS peer rejected", metadata: ["role": "\(role)", "reason": "\(error)"])
                promise.succeed(.failed)
            }
        }
    }
}
