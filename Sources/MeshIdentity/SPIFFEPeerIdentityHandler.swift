import NIOCore
import NIOSSL
import NIOTLS

/// Sits behind the TLS handler built by ``MeshTLS`` and exposes the peer's
/// verified SPIFFE ID once the handshake has completed.
///
/// It fires a ``SPIFFEPeerVerifiedEvent`` down the pipeline on success. When
/// the handshake fails, ``peerID`` fails with the precise reason (an
/// ``X509SVIDValidationError`` or ``SPIFFEAuthorizationError``) when the
/// peer's certificate was the cause, else with the TLS error.
public final class SPIFFEPeerIdentityHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    private let box: VerifiedPeerBox
    private var promise: EventLoopPromise<VerifiedPeer>?

    init(box: VerifiedPeerBox) {
        self.box = box
    }

    /// Completes with the verified peer after the handshake.
    public var verifiedPeer: EventLoopFuture<VerifiedPeer> {
        guard let promise else { preconditionFailure("SPIFFEPeerIdentityHandler is not in a pipeline") }
        return promise.futureResult
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        promise = context.eventLoop.makePromise(of: VerifiedPeer.self)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        promise?.fail(ChannelError.ioOnClosedChannel)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted(let negotiatedProtocol) = tlsEvent {
            switch box.get() {
            case .success(let id)?:
                let peer = VerifiedPeer(peerID: id, negotiatedProtocol: negotiatedProtocol)
                promise?.succeed(peer)
                context.fireUserInboundEventTriggered(event)
                context.fireUserInboundEventTriggered(SPIFFEPeerVerifiedEvent(peer: peer))
                return
            case .failure(let error)?:
                promise?.fail(error)
            case nil:
                promise?.fail(X509SVIDValidationError.emptyChain)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .failure(let reason)? = box.get() {
            promise?.fail(reason)
        } else {
            promise?.fail(error)
        }
        context.fireErrorCaught(error)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if case .failure(let reason)? = box.get() {
            promise?.fail(reason)
        } else {
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension SPIFFEPeerIdentityHandler: Sendable {}

/// What a completed mesh TLS handshake established about the peer.
public struct VerifiedPeer: Sendable, Hashable {
    /// The peer's verified and authorized SPIFFE ID.
    public var peerID: SPIFFEID
    /// The ALPN protocol both sides agreed on, if any.
    public var negotiatedProtocol: String?
}

/// Fired through the pipeline once the peer's SPIFFE ID has been verified and authorized.
public struct SPIFFEPeerVerifiedEvent: Sendable, Hashable {
    /// The verified peer.
    public var peer: VerifiedPeer
    /// The peer's verified SPIFFE ID.
    public var peerID: SPIFFEID { peer.peerID }
}

extension Channel {
    /// The verified peer, once the mesh TLS handshake has completed.
    ///
    /// This looks the handler up in the pipeline, so it can only report a refusal while the
    /// channel is still open; use the future returned by ``MeshTLS/addClientHandlers(to:authorizer:)``
    /// when the precise reason of a refused handshake matters.
    public func verifiedPeer() async throws -> VerifiedPeer {
        try await pipeline.handler(type: SPIFFEPeerIdentityHandler.self).flatMap { $0.verifiedPeer }.get()
    }

    /// The peer's verified SPIFFE ID, once the mesh TLS handshake has completed.
    public func spiffePeerID() async throws -> SPIFFEID {
        try await verifiedPeer().peerID
    }
}
