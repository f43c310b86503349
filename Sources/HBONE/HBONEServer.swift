import Logging
import MeshIdentity
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import NIOConcurrencyHelpers

/// An HBONE server: HTTP/2 CONNECT over SPIFFE mTLS (default port 15008).
///
/// Each accepted connection completes a TLS 1.3 handshake with ALPN `h2` in
/// which the client's SVID must verify against the trust bundles and, by
/// default, belong to the server's own trust domain. Every CONNECT stream is
/// then resolved and authorized by an ``HBONEInboundHandler``, connected to its
/// upstream, answered 200 and spliced; failures are answered 400, 401 or 503.
///
/// ```swift
/// let server = HBONEServer(tls: tls, handler: myHandler, configuration: .init(port: 0))
/// let address = try await server.start()
/// ...
/// await server.shutdown()   // GOAWAY, then close after the drain deadline
/// ```
public final class HBONEServer: Sendable {
    private let identities: any MeshTLSProvider
    private let serverIdentity: (@Sendable (SocketAddress?) -> SPIFFEID?)?
    private let handler: any HBONEInboundHandler
    private let configuration: HBONEServerConfiguration
    private let group: any EventLoopGroup
    private let metrics: any HBONEMetricsObserver
    private let peerAuthorizer: SPIFFEAuthorizer?
    private let logger: Logger
    private let tracker = ChannelTracker()
    private let listener = NIOLockedValueBox<(any Channel)?>(nil)

    /// A server for `handler` presenting one SVID on every connection. `peerAuthorizer`
    /// defaults to "same trust domain as our SVID".
    public convenience init(
        tls: MeshTLS,
        handler: any HBONEInboundHandler,
        configuration: HBONEServerConfiguration = HBONEServerConfiguration(),
        peerAuthorizer: SPIFFEAuthorizer? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metrics: any HBONEMetricsObserver = HBONENoMetrics(),
        logger: Logger = Logger(label: "mesh.hbone.server")
    ) {
        self.init(identities: tls, serverIdentity: nil, handler: handler, configuration: configuration, peerAuthorizer: peerAuthorizer,
                  group: group, metrics: metrics, logger: logger)
    }

    /// A server that presents, on each connection, the SVID of the identity
    /// `serverIdentity` names for the connection's local address (the
    /// destination workload's, as a node proxy does). A connection to an
    /// address that names no identity is closed before the handshake.
    public init(
        identities: any MeshTLSProvider,
        serverIdentity: (@Sendable (SocketAddress?) -> SPIFFEID?)?,
        handler: any HBONEInboundHandler,
        configuration: HBONEServerConfiguration = HBONEServerConfiguration(),
        peerAuthorizer: SPIFFEAuthorizer? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metrics: any HBONEMetricsObserver = HBONENoMetrics(),
        logger: Logger = Logger(label: "mesh.hbone.server")
    ) {
        self.identities = identities
        self.serverIdentity = serverIdentity
        self.handler = handler
        self.configuration = configuration
        self.peerAuthorizer = peerAuthorizer
        self.group = group
        self.metrics = metrics
        self.logger = logger
    }

    /// Binds and starts accepting; returns the bound address.
    @discardableResult
    public func start() async throws -> SocketAddress {
        let channel = try await bootstrap(connections: nil)
            .bind(host: configuration.host, port: configuration.port)
            .get()
        listener.withLockedValue { $0 = channel }
        guard let address = channel.localAddress else { throw HBONEError.shutDown }
        logger.info("HBONE server listening", metadata: ["address": "\(address)"])
        return address
    }

    /// Accepts on `socket` too, a TCP socket already bound and listening (for example one made
    /// inside a pod's network namespace for in-pod capture). NIO owns the descriptor from here;
    /// closing the returned listener stops accepting on it and closes the connections it accepted.
    public func listen(boundSocket socket: NIOBSDSocket.Handle) async throws -> HBONEListener {
        let connections = ChannelTracker()
        let channel = try await bootstrap(connections: connections).withBoundSocket(socket).get()
        return HBONEListener(channel: channel, connections: connections)
    }

    /// The server bootstrap every listener shares; accepted connections join the server's
    /// tracker and, for an extra listener, that listener's own.
    private func bootstrap(connections: ChannelTracker?) throws -> ServerBootstrap {
        let authorizer = try peerAuthorizer ?? .memberOf(identities.trustDomain)
        let identities = self.identities
        let serverIdentity = self.serverIdentity
        let tracker = self.tracker
        let configuration = self.configuration
        let handler = self.handler
        let metrics = self.metrics
        let logger = self.logger
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard tracker.add(channel), connections?.add(channel) ?? true else {
                    return channel.close()
                }
                // One SVID for every connection: set up synchronously, as the hot path.
                if serverIdentity == nil, let tls = identities as? MeshTLS {
                    return channel.eventLoop.makeCompletedFuture {
                        try Self.configure(channel: channel, tls: tls, authorizer: authorizer, configuration: configuration, handler: handler, metrics: metrics, logger: logger)
                    }
                }
                let local = channel.localAddress
                guard let identity = serverIdentity?(local) ?? identities.defaultIdentity else {
                    logger.warning("HBONE connection to an address with no local workload; closing", metadata: ["local": "\(local.map { "\($0)" } ?? "-")"])
                    return channel.close()
                }
                return channel.eventLoop.makeFutureWithLoopTask {
                    try await identities.meshTLS(for: identity)
                }.flatMapThrowing { tls in
                    try Self.configure(channel: channel, tls: tls, authorizer: authorizer, configuration: configuration, handler: handler, metrics: metrics, logger: logger)
                }
            }
    }

    private static func configure(
        channel: any Channel,
        tls: MeshTLS,
        authorizer: SPIFFEAuthorizer,
        configuration: HBONEServerConfiguration,
        handler: any HBONEInboundHandler,
        metrics: any HBONEMetricsObserver,
        logger: Logger
    ) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandlers(tls.makeServerHandlers(authorizer: authorizer))
        try sync.addHandler(WriteCoalescingHandler())
        try sync.addHandler(HandshakeGate(metrics: metrics, logger: logger))
        if configuration.http2.fastDataPath {
            try sync.addHandler(HBONEDataPath(role: .server, settings: configuration.http2))
        }
        let management = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(
                maxIdleTime: nil,
                maxAge: nil,
                maxGraceTime: configuration.drainDeadline,
                keepalive: configuration.keepalive.map { .init(pingInterval: $0.interval, ackTimeout: $0.timeout) }
            )
        )
        let http2 = NIOHTTP2Handler(
            mode: .server,
            eventLoop: channel.eventLoop,
            connectionConfiguration: configuration.http2.connectionConfiguration,
            streamConfiguration: configuration.http2.streamConfiguration,
            streamDelegate: management.http2StreamDelegate
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(
                    HBONEInboundStreamHandler(handler: handler, configuration: configuration, metrics: metrics, logger: logger)
                )
            }
        }
        try sync.addHandler(http2)
        try sync.addHandler(management)
        try sync.addHandler(ConnectionErrorLogger(logger: logger))
    }

    /// The bound address, once started.
    public var localAddress: SocketAddress? { listener.withLockedValue { $0?.localAddress } }

    /// Open client connections (for tests and readiness).
    public var connectionCount: Int { tracker.count }

    /// Stops accepting, sends GOAWAY on every connection, and waits until they have
    /// closed: streams may finish until the drain deadline, then connections are closed.
    public func shutdown() async {
        let channel = listener.withLockedValue { $0 }
        try? await channel?.close()
        let connections = tracker.close()
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        for connection in connections {
            try? await connection.closeFuture.get()
        }
    }
}

/// An extra listener of an ``HBONEServer`` (``HBONEServer/listen(boundSocket:)``), for
/// example one per captured pod; its connections also drain with the server's shutdown.
public final class HBONEListener: Sendable {
    private let channel: any Channel
    private let connections: ChannelTracker

    init(channel: any Channel, connections: ChannelTracker) {
        self.channel = channel
        self.connections = connections
    }

    /// The bound address.
    public var localAddress: SocketAddress? { channel.localAddress }

    /// Open connections accepted on this listener.
    public var connectionCount: Int { connections.count }

    /// Stops accepting and closes every connection accepted here (their streams are reset).
    public func close() async {
        try? await channel.close()
        await connections.closeAll()
    }
}

/// Admits a connection once its mTLS handshake verified the peer and agreed on ALPN `h2`,
/// then leaves the pipeline. A connection that fails before that (no or an untrusted client
/// certificate, not TLS at all, another ALPN) is closed and reported to the metrics observer.
final class HandshakeGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let metrics: any HBONEMetricsObserver
    private let logger: Logger
    private var reported = false

    init(metrics: any HBONEMetricsObserver, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let verified = event as? SPIFFEPeerVerifiedEvent {
            if verified.peer.negotiatedProtocol != "h2" {
                logger.warning("HBONE peer did not negotiate h2", metadata: ["peer": "\(verified.peerID)", "alpn": "\(verified.peer.negotiatedProtocol ?? "none")"])
                refuse(context: context, reason: "ALPN \(verified.peer.negotiatedProtocol ?? "none"), not h2")
                return
            }
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.info("HBONE handshake failed", metadata: ["peer": "\(context.channel.remoteAddress.map { "\($0)" } ?? "-")", "error": "\(error)"])
        refuse(context: context, reason: "\(error)")
    }

    private func refuse(context: ChannelHandlerContext, reason: String) {
        if !reported {
            reported = true
            metrics.handshakeFailed(peer: context.channel.remoteAddress, local: context.channel.localAddress, reason: reason)
        }
        context.close(promise: nil)
    }
}

/// Logs and closes on connection-level errors (TLS failures, protocol errors).
final class ConnectionErrorLogger: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("HBONE connection error", metadata: ["error": "\(error)", "peer": "\(context.channel.remoteAddress.map { "\($0)" } ?? "-")"])
        context.close(promise: nil)
    }
}
