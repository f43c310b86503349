import Foundation
import Logging
import NIOCore
import NIOSSL
import NIOConcurrencyHelpers

/// Builds NIOSSL handlers for SPIFFE mutual TLS from an ``SVIDSource`` and a
/// ``TrustBundleStore``.
///
/// Both sides present the current SVID, require TLS 1.3 and ALPN, validate
/// the peer's chain as an X509-SVID (``X509SVIDVerifier``) against the bundle
/// of the peer's trust domain, and then authorize the peer's SPIFFE ID with a
/// ``SPIFFEAuthorizer``. The client sends no SNI. Every new handshake uses the
/// newest SVID and bundles; the NIOSSL context is rebuilt only when the SVID
/// changes. After the handshake the verified peer ID is available through
/// ``SPIFFEPeerIdentityHandler`` (`channel.spiffePeerID()`).
///
/// ```swift
/// let tls = MeshTLS(svids: source, bundles: TrustBundleStore(ca.trustBundle))
/// // server child channel initializer:
/// try channel.pipeline.syncOperations.addHandlers(tls.makeServerHandlers())
/// // client, expecting a specific server identity:
/// try channel.pipeline.syncOperations.addHandlers(tls.makeClientHandlers(authorizer: .exactly(serverID)))
/// let peer = try await channel.spiffePeerID()
/// ```
public final class MeshTLS: Sendable {
    private enum Role: Hashable { case server, client }

    private struct CachedContext {
        var generation: UInt64
        var context: NIOSSLContext
    }

    /// The SVIDs presented to peers.
    public let svids: SVIDSource
    /// The bundles peers are verified against.
    public let bundles: TrustBundleStore
    /// The settings.
    public let configuration: MeshTLSConfiguration
    private let clock: any MeshClock
    private let contexts = NIOLockedValueBox<[Role: CachedContext]>([:])

    public init(svids: SVIDSource, bundles: TrustBundleStore, configuration: MeshTLSConfiguration = MeshTLSConfiguration(), clock: any MeshClock = SystemMeshClock()) {
        self.svids = svids
        self.bundles = bundles
        self.configuration = configuration
        self.clock = clock
    }

    /// Handlers for an accepted connection: a TLS server handler and a ``SPIFFEPeerIdentityHandler``.
    public func makeServerHandlers(authorizer: SPIFFEAuthorizer? = nil) throws -> [any ChannelHandler] {
        let box = VerifiedPeerBox()
        let verify = makeVerificationCallback(authorizer: authorizer ?? configuration.serverAuthorizer, box: box, role: "server")
        let handler = NIOSSLServerHandler(context: try context(for: .server), customVerificationCallback: verify)
        return [handler, SPIFFEPeerIdentityHandler(box: box)]
    }

    /// Handlers for an outgoing connection whose server must satisfy `authorizer`.
    public func makeClientHandlers(authorizer: SPIFFEAuthorizer) throws -> [any ChannelHandler] {
        let box = VerifiedPeerBox()
        let verify = makeVerificationCallback(authorizer: authorizer, box: box, role: "client")
        let handler = try NIOSSLClientHandler(context: try context(for: .client), serverHostname: nil, customVerificationCallback: verify)
        return [handler, SPIFFEPeerIdentityHandler(box: box)]
    }

    /// Adds the server handlers to `channel` (call from its initializer, on its event loop) and
    /// returns the handshake's outcome. Unlike `channel.verifiedPeer()`, the returned future
    /// stays readable after a refused handshake has closed the channel and torn down its pipeline.
    public func addServerHandlers(to channel: any Channel, authorizer: SPIFFEAuthorizer? = nil) throws -> EventLoopFuture<VerifiedPeer> {
        try add(makeServerHandlers(authorizer: authorizer), to: channel)
    }

    /// Adds the client handlers to `channel` (call from its initializer, on its event loop) and
    /// returns the handshake's outcome, readable even after the channel has closed.
    public func addClientHandlers(to channel: any Channel, authorizer: SPIFFEAuthorizer) throws -> EventLoopFuture<VerifiedPeer> {
        try add(makeClientHandlers(authorizer: authorizer), to: channel)
    }

    private func add(_ handlers: [any ChannelHandler], to channel: any Channel) throws -> EventLoopFuture<VerifiedPeer> {
        try channel.pipeline.syncOperations.addHandlers(handlers)
        guard let identity = handlers.last as? SPIFFEPeerIdentityHandler else {
            preconditionFailure("MeshTLS handler lists end with SPIFFEPeerIdentityHandler")
        }
        return identity.verifiedPeer
    }

    private func makeVerificationCallback(authorizer: SPIFFEAuthorizer, box: VerifiedPeerBox, role: String) -> NIOSSLCustomVerificationCallback {
        let verifier = configuration.verifier
        let bundles = self.bundles
        let clock = self.clock
        let logger = configuration.logger
        return { certificates, promise in
            do {
                let der = try certificates.map { try $0.toDERBytes() }
                let verified = try verifier.verify(derChain: der, bundles: bundles.current, now: clock.now)
                try authorizer.authorize(verified.id)
                box.set(.success(verified.id))
                promise.succeed(.certificateVerified)
            } catch {
                logger.warning("mTLS peer rejected", metadata: ["role": "\(role)", "reason": "\(error)"])
                box.set(.failure(error))
                promise.succeed(.failed)
            }
        }
    }

    private func context(for role: Role) throws -> NIOSSLContext {
        guard let (svid, generation) = svids.currentWithGeneration else { throw SVIDSourceError.noValidSVID }
        if let cached = contexts.withLockedValue({ $0[role] }), cached.generation == generation {
            return cached.context
        }
        let context = try makeContext(role: role, svid: svid)
        contexts.withLockedValue { $0[role] = CachedContext(generation: generation, context: context) }
        return context
    }

    private func makeContext(role: Role, svid: X509SVID) throws -> NIOSSLContext {
        let (chain, key) = try svid.nioSSLSources()
        var tls: TLSConfiguration
        switch role {
        case .server:
            tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        case .client:
            tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateChain = chain
            tls.privateKey = key
        }
        tls.minimumTLSVersion = .tlsv13
        tls.maximumTLSVersion = .tlsv13
        // Peer chains are verified by the custom callback against SPIFFE bundles,
        // never against the system roots or host names.
        tls.certificateVerification = .noHostnameVerification
        tls.trustRoots = .certificates([])
        tls.applicationProtocols = configuration.applicationProtocols
        return try NIOSSLContext(configuration: tls)
    }
}

extension X509SVID {
    /// The chain (leaf first) and private key as NIOSSL sources, for a `TLSConfiguration` or
    /// a certificate reloader's override.
    public func nioSSLSources() throws -> (chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource) {
        let chain = try self.chain.map { try NIOSSLCertificateSource.certificate(NIOSSLCertificate(bytes: CertificateCoding.der($0), format: .der)) }
        let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(bytes: Array(privateKey.derRepresentation), format: .der))
        return (chain, key)
    }
}

/// Carries the verification outcome from the TLS callback to the pipeline.
final class VerifiedPeerBox: Sendable {
    private let value = NIOLockedValueBox<Result<SPIFFEID, any Error>?>(nil)

    func set(_ result: Result<SPIFFEID, any Error>) { value.withLockedValue { $0 = result } }
    func get() -> Result<SPIFFEID, any Error>? { value.withLockedValue { $0 } }
}
