import Logging
import MeshIdentity
import NIOCore
import NIOHTTP2
import NIOPosix

/// What to open through HBONE: a destination behind a peer's HBONE address.
public struct HBONEConnectRequest: Sendable, Hashable {
    /// The destination (`:authority`), usually the destination workload's `ip:port`.
    public var authority: HBONEAuthority
    /// The peer's HBONE address (typically the destination workload's IP, port 15008).
    public var peer: SocketAddress
    /// The SPIFFE IDs the peer may present; anything else fails the handshake.
    public var expectedIdentities: Set<SPIFFEID>
    /// `forwarded`, `baggage` and `traceparent` to send.
    public var forwarding: HBONEForwarding
    /// The identity to present (the source workload's); nil presents the client's default one.
    public var sourceIdentity: SPIFFEID?

    public init(authority: HBONEAuthority, peer: SocketAddress, expectedIdentities: Set<SPIFFEID>, forwarding: HBONEForwarding = HBONEForwarding(),
                sourceIdentity: SPIFFEID? = nil) {
        self.authority = authority
        self.peer = peer
        self.expectedIdentities = expectedIdentities
        self.forwarding = forwarding
        self.sourceIdentity = sourceIdentity
    }
}

/// Opens HBONE streams (HTTP/2 CONNECT over SPIFFE mTLS) through a pool of connections.
///
/// A stream is available either as a NIO child channel carrying `ByteBuffer`s
/// (``openChannel(_:initializer:)``, for splicing into other channels) or as an
/// async byte stream (``openStream(_:)``, for using the mesh in-process). A
/// non-200 answer throws ``HBONEError/connectRejected(status:authority:)``.
///
/// ```swift
/// let client = HBONEClient(tls: MeshTLS(svids: source, bundles: bundles))
/// let stream = try await client.openStream(.init(authority: .init(host: "10.0.0.7", port: 8080),
///                                                peer: try .init(ipAddress: "10.0.0.7", port: 15008),
///                                                expectedIdentities: [serverID]))
/// try await stream.executeThenClose { inbound, outbound in ... }
/// ```
public final class HBONEClient: Sendable {
    /// The connection pool.
    public let pool: HBONEConnectionPool
    private let identities: any MeshTLSProvider
    private let metrics: any HBONEMetricsObserver
    private let logger: Logger

    public init(
        tls: any MeshTLSProvider,
        configuration: HBONEClientConfiguration = HBONEClientConfiguration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metrics: any HBONEMetricsObserver = HBONENoMetrics(),
        logger: Logger = Logger(label: "mesh.hbone.client")
    ) {
        self.identities = tls
        self.pool = HBONEConnectionPool(tls: tls, configuration: configuration, group: group, logger: logger)
        self.metrics = metrics
        self.logger = logger
    }

    /// The pool key a request maps to.
    public func poolKey(for request: HBONEConnectRequest) throws -> HBONEPoolKey {
        guard let source = request.sourceIdentity ?? identities.defaultIdentity else { throw HBONEError.noIdentity }
        let sourceIP = request.forwarding.source.flatMap { try? HBONEAuthority(parsing: $0).host }
        return HBONEPoolKey(sourceIdentity: source, destinationIdentities: request.expectedIdentities, destination: request.peer, sourceAddress: sourceIP)
    }

    /// Opens a stream and, once the peer answered 200, returns what `initializer`
    /// produced. The initializer runs on the new stream channel before any byte
    /// arrives; the channel reads and writes `ByteBuffer`s, `close(mode: .output)`
    /// half-closes and `close()` resets the stream if it is still open.
    public func openChannel<Output: Sendable>(
        _ request: HBONEConnectRequest,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Output>
    ) async throws -> Output {
        try await open(request, on: nil, spliced: false, initializer: initializer).output
    }

    /// Opens a stream as ``openChannel(_:initializer:)`` does, on a pooled connection on `loop`
    /// if given, and on a connection with an ``HBONEDataPath`` if `spliced`; also returns what the
    /// metrics hook was told (with the verified peer).
    private func open<Output: Sendable>(
        _ request: HBONEConnectRequest,
        on loop: (any EventLoop)?,
        spliced: Bool,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Output>
    ) async throws -> (output: Output, info: HBONETunnelInfo) {
        let key = try poolKey(for: request)
        let connection = try await pool.acquire(key, on: loop, spliced: spliced)
        guard let multiplexer = connection.multiplexer else {
            connection.release()
            throw HBONEError.closedBeforeResponse
        }
        let loop = connection.channel.eventLoop
        let response = loop.makePromise(of: Void.self)
        let output = loop.makePromise(of: Output.self)
        let info = HBONETunnelInfo(direction: .outbound, peerID: connection.peer?.peerID, authority: request.authority.description, source: request.forwarding.source)
        let metrics = self.metrics
        let created = loop.makePromise(of: (any Channel).self)
        // Created off the loop, used only on it (nil until the initializer runs).
        let initialized = NIOLoopBoundBox.makeEmptyBox(valueType: Bool.self, eventLoop: loop)
        multiplexer.createStreamChannel(promise: created) { stream in
            initialized.value = true
            stream.closeFuture.whenComplete { _ in connection.release() }
            do {
                let sync = stream.pipeline.syncOperations
                try sync.addHandler(HBONEOutboundStreamHandler(authority: request.authority, forwarding: request.forwarding, response: response))
                try sync.addHandler(HBONEStreamDataCodec(fastPath: connection.fastDataPath ? .whenEstablished : .off))
            } catch {
                response.fail(error)
                return stream.eventLoop.makeFailedFuture(error)
            }
            initializer(stream).cascade(to: output)
            return output.futureResult.map { _ in }
        }
        // A stream that was never created (the connection closed first), or whose set-up failed, may
        // never answer `response` or complete `output`: fail both (completing a promise twice is a no-op).
        // Its slot is returned here only if the initializer, which returns it on close, never ran.
        created.futureResult.whenFailure { error in
            if initialized.value == nil { connection.release() }
            response.fail(error)
            output.fail(error)
        }
        do {
            try await response.futureResult.get()
        } catch {
            if let value = try? await output.futureResult.get(), let channel = value as? any Channel {
                channel.close(promise: nil)
            }
            if let rejected = error as? HBONEError, let status = rejected.status {
                metrics.tunnelClosed(info, summary: HBONETunnelSummary(status: status, responseFlag: .none))
            }
            throw error
        }
        metrics.tunnelOpened(info)
        return (try await output.futureResult.get(), info)
    }

    /// Opens a stream as an async byte stream: `inbound` yields what the destination
    /// sends, `outbound.write` sends, `outbound.finish()` half-closes.
    public func openStream(_ request: HBONEConnectRequest) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await openChannel(request) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: channel,
                    configuration: .init(isOutboundHalfClosureEnabled: true)
                )
            }
        }
    }

    /// Opens a stream and splices it with `socket`, a TCP channel with
    /// `allowRemoteHalfClosure` true, for example an accepted SOCKS5 or redirected
    /// connection. Add an ``HBONEHoldingHandler`` to `socket` in its initializer (last
    /// in the pipeline) so that bytes read before the tunnel is up are kept. Returns once the peer answered 200 and bytes
    /// flow both ways; `prelude` (for example a SOCKS5 success reply) is written to
    /// `socket` before any tunnelled byte; `onClose` gets the byte counts (to the destination, from it).
    public func tunnel(
        _ request: HBONEConnectRequest,
        splicingWith socket: any Channel,
        prelude: ByteBuffer? = nil,
        onClose: @escaping @Sendable (_ sent: UInt64, _ received: UInt64) -> Void = { _, _ in }
    ) async throws {
        // Bytes that arrive on either side before the splice is in place are held, not lost.
        try await HBONEHoldingHandler.ensure(on: socket)
        // A connection on the socket's event loop keeps every spliced byte on one thread.
        let (stream, info) = try await open(request, on: socket.eventLoop, spliced: true) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(HBONEHoldingHandler())
                return channel
            }
        }
        do {
            if let prelude { try await socket.writeAndFlush(prelude) }
            let metrics = self.metrics
            try await stream.eventLoop.flatSubmit {
                SpliceHandler.join(stream: stream, socket: socket) { fromStream, fromSocket in
                    metrics.tunnelClosed(info, summary: HBONETunnelSummary(status: 200, responseFlag: .none, bytesToDestination: fromSocket, bytesFromDestination: fromStream))
                    onClose(fromSocket, fromStream)
                }
            }.get()
        } catch {
            stream.close(promise: nil)
            throw error
        }
    }

    /// Closes all pooled connections.
    public func close() async { await pool.close() }
}
