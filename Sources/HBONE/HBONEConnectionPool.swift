import Logging
import MeshIdentity
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOConcurrencyHelpers

/// Pools HBONE connections by ``HBONEPoolKey``.
///
/// A connection carries up to ``HBONEClientConfiguration/maxStreamsPerConnection``
/// streams (fewer if the peer's SETTINGS_MAX_CONCURRENT_STREAMS says so); when all
/// connections of a key are full a new one is dialled, with at most one dial in
/// flight per key (other requests wait for it). Connections that receive GOAWAY or
/// fail leave the pool without failing their open streams; idle ones close after
/// the idle timeout; PINGs detect dead peers.
///
/// A dial runs on the loop its connection will live on (``EventLoop/runTask(_:)``), and so does
/// the pool's own code while it serves that dial (SE-0417): close the pool (``close()``) before
/// shutting down its group or any loop a stream was acquired on, since a task whose
/// loop has shut down never resumes.
public actor HBONEConnectionPool {
    private struct Entry {
        var connections: [PooledConnection] = []
        var dial: Task<PooledConnection, any Error>?
    }

    private let identities: any MeshTLSProvider
    private let configuration: HBONEClientConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private var entries: [HBONEPoolKey: Entry] = [:]
    private var closed = false
    private var dials = 0
    private var keepaliveClosures = 0

    /// A pool whose connections present the SVID of their key's source identity, taken from `tls`.
    public init(tls: any MeshTLSProvider, configuration: HBONEClientConfiguration = HBONEClientConfiguration(), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "mesh.hbone.pool")) {
        self.identities = tls
        self.configuration = configuration
        self.group = group
        self.logger = logger
    }

    /// A connection with a free stream slot for `key` (the slot is reserved for the caller).
    ///
    /// With `on:` (the event loop of a channel the stream will be spliced with), only
    /// connections on that loop are used, and a new one is dialled on it when they are
    /// all full (a loop that cannot dial, not a NIOPosix one, is ignored): spliced bytes then never hop between threads (each hop costs a thread
    /// wake-up per message). A key thus holds at most one connection with free slots per
    /// event loop; the stream limit and the single dial in flight per key are unchanged.
    ///
    /// `spliced` streams (``HBONEClient/tunnel(_:splicingWith:prelude:onClose:)``) get connections
    /// with an ``HBONEDataPath`` when ``HBONEHTTP2Settings/fastDataPath`` is on; other streams never
    /// share those connections (NIOHTTP2 must not send DATA on them).
    func acquire(_ key: HBONEPoolKey, on preferred: (any EventLoop)? = nil, spliced: Bool = false) async throws -> PooledConnection {
        let fast = spliced && configuration.http2.fastDataPath
        // Only a loop a ClientBootstrap can dial on (a NIOPosix loop); otherwise any connection will do.
        let loop = preferred.flatMap { ClientBootstrap(validatingGroup: $0) == nil ? nil : $0 }
        while true {
            try Task.checkCancellation()
            guard !closed else { throw HBONEError.shutDown }
            var entry = entries[key, default: Entry()]
            entry.connections.removeAll { !$0.isUsable && $0.activeStreams == 0 }
            entries[key] = entry
            if let connection = entry.connections.first(where: { $0.fastDataPath == fast && (loop == nil || $0.channel.eventLoop === loop) && $0.tryReserve() }) {
                return connection
            }
            if let dial = entry.dial {
                _ = try await dial.value
                continue
            }
            // On the connection's loop when there is one, like the rest of a connection's set-up. In a plain
            // Task each wait on a future of that loop is a thread hop, and the dispatch block each hop
            // allocates on the loop's thread ends in a pool thread's cache, where it keeps a page of the
            // loop's arena resident after a burst (docs/reliability.md, part 3).
            let dialing: @Sendable () async throws -> PooledConnection = { try await self.dialAndRegister(key, on: loop, fastDataPath: fast) }
            let task = loop.map { $0.runTask(dialing) } ?? Task(operation: dialing)
            entries[key, default: Entry()].dial = task
            _ = try await task.value
        }
    }

    private func dialAndRegister(_ key: HBONEPoolKey, on loop: (any EventLoop)?, fastDataPath: Bool) async throws -> PooledConnection {
        do {
            dials += 1
            let tls = try await identities.meshTLS(for: key.sourceIdentity)
            let connection = try await Self.dial(key: key, tls: tls, configuration: configuration, group: group, loop: loop, fastDataPath: fastDataPath, logger: logger) {
                [weak self] connection, error in
                connection.channel.eventLoop.runTask { [weak self] in await self?.failed(connection, error) }
            }
            entries[key, default: Entry()].dial = nil
            guard !closed else {
                connection.channel.close(promise: nil)
                throw HBONEError.shutDown
            }
            entries[key, default: Entry()].connections.append(connection)
            connection.channel.closeFuture.whenComplete { _ in
                connection.channel.eventLoop.runTask { await self.remove(connection) }
            }
            logger.debug("HBONE connection pooled", metadata: ["key": "\(key)", "peer": "\(connection.peer?.peerID.description ?? "-")", "limit": "\(connection.streamLimit)"])
            return connection
        } catch {
            entries[key]?.dial = nil
            throw error
        }
    }

    private func failed(_ connection: PooledConnection, _ error: HBONEError) {
        guard error == .keepaliveTimeout else { return }
        keepaliveClosures += 1
        logger.warning("pooled HBONE connection closed: keepalive PING unanswered (peer unreachable); its streams end, new ones dial again", metadata: [
            "key": "\(connection.key)", "streams": "\(connection.activeStreams)",
            "timeout_s": "\((configuration.keepalive?.timeout.nanoseconds ?? 0) / 1_000_000_000)",
        ])
    }

    private func remove(_ connection: PooledConnection) {
        entries[connection.key]?.connections.removeAll { $0 === connection }
        if let entry = entries[connection.key], entry.connections.isEmpty, entry.dial == nil {
            entries[connection.key] = nil
        }
    }

    private static func dial(key: HBONEPoolKey, tls: MeshTLS, configuration: HBONEClientConfiguration, group: any EventLoopGroup, loop: (any EventLoop)?, fastDataPath: Bool, logger: Logger,
                             onFailure: @escaping @Sendable (PooledConnection, HBONEError) -> Void) async throws -> PooledConnection {
        let authorizer = SPIFFEAuthorizer.exactly(Set(key.destinationIdentities))
        let dialed = DialBox()
        // The preferred loop only if it can run a ClientBootstrap (a NIOPosix loop).
        let bootstrap = loop.flatMap { ClientBootstrap(validatingGroup: $0) } ?? ClientBootstrap(group: group)
        var local: SocketAddress?
        if configuration.bindsSourceAddress, let ip = key.sourceAddress { local = try SourceBinding.address(for: ip) }
        // Everything is installed before the handshake so no byte after it (the peer's SETTINGS) is missed;
        // NIOSSL holds our HTTP/2 preface until the handshake is done.
        let connecting = bootstrap
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    let tlsHandlers = try tls.makeClientHandlers(authorizer: authorizer)
                    try sync.addHandlers(tlsHandlers)
                    try sync.addHandler(WriteCoalescingHandler())
                    if fastDataPath {
                        try sync.addHandler(HBONEDataPath(role: .client, settings: configuration.http2))
                    }
                    guard let identity = tlsHandlers.last as? SPIFFEPeerIdentityHandler else { throw HBONEError.closedBeforeResponse }
                    let connection = PooledConnection(channel: channel, key: key, maxStreams: configuration.maxStreamsPerConnection, idleTimeout: configuration.idleTimeout, fastDataPath: fastDataPath,
                                                      onFailure: onFailure)
                    let ready = channel.eventLoop.makePromise(of: Void.self)
                    let http2 = NIOHTTP2Handler(
                        mode: .client,
                        eventLoop: channel.eventLoop,
                        connectionConfiguration: configuration.http2.connectionConfiguration,
                        streamConfiguration: configuration.http2.streamConfiguration
                    ) { stream in
                        // Peers do not open streams towards HBONE clients.
                        stream.close()
                    }
                    try sync.addHandler(http2)
                    if let keepalive = configuration.keepalive {
                        try sync.addHandler(HBONEKeepaliveHandler(keepalive: keepalive))
                    }
                    try sync.addHandler(HBONEConnectionStateHandler(connection: connection, ready: ready))
                    connection.multiplexer = try http2.syncMultiplexer()
                    dialed.set(DialResult(connection: connection, peer: identity.verifiedPeer, ready: ready.futureResult))
                }
            }
        let channel = try await SourceBinding.connect(connecting, to: key.destination, from: local, connector: configuration.connector,
                                                      workload: key.sourceAddress, timeout: configuration.connectTimeout)
        do {
            // Taken from the initializer, not looked up in the pipeline: a failed handshake may already have torn it down.
            guard let dial = dialed.get() else { throw HBONEError.closedBeforeResponse }
            let (connection, ready) = (dial.connection, dial.ready)
            let peer = try await withDeadline(configuration.connectTimeout, on: channel.eventLoop, error: HBONEError.settingsTimeout) {
                try await dial.peer.get()
            }
            guard peer.negotiatedProtocol == "h2" else { throw HBONEError.alpnNotNegotiated(peer.negotiatedProtocol) }
            connection.peer = peer
            try await withDeadline(configuration.connectTimeout, on: channel.eventLoop, error: HBONEError.settingsTimeout) {
                try await ready.get()
            }
            return connection
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// Open connections per key (for tests and diagnostics).
    public func connectionCount(for key: HBONEPoolKey? = nil) -> Int {
        if let key { return entries[key]?.connections.filter(\.isUsable).count ?? 0 }
        return entries.values.reduce(0) { $0 + $1.connections.filter(\.isUsable).count }
    }

    /// Streams open on the pool's connections, for one key or all (for diagnostics: a pool
    /// whose tunnels have all ended has none).
    public func activeStreamCount(for key: HBONEPoolKey? = nil) -> Int {
        let entries = key.map { self.entries[$0].map { [$0] } ?? [] } ?? Array(self.entries.values)
        return entries.reduce(0) { $0 + $1.connections.reduce(0) { $0 + $1.activeStreams } }
    }

    /// The event loops of a key's open connections (for tests and diagnostics).
    func connectionLoops(for key: HBONEPoolKey) -> [any EventLoop] {
        entries[key]?.connections.filter(\.isUsable).map(\.channel.eventLoop) ?? []
    }

    /// Whether each of a key's open connections carries spliced streams on an ``HBONEDataPath`` (for tests and diagnostics).
    func dataPathFlags(for key: HBONEPoolKey) -> [Bool] {
        entries[key]?.connections.filter(\.isUsable).map(\.fastDataPath) ?? []
    }

    /// How many connections this pool has dialled in total.
    public var dialCount: Int { dials }

    /// How many connections were closed because a keepalive PING went unanswered.
    public var keepaliveClosureCount: Int { keepaliveClosures }

    /// Closes every connection and refuses new streams.
    public func close() async {
        closed = true
        let connections = entries.values.flatMap(\.connections)
        entries.removeAll()
        for connection in connections {
            try? await connection.channel.close()
        }
    }
}

/// What the channel initializer built, handed back to the dialler.
struct DialResult: Sendable {
    let connection: PooledConnection
    let peer: EventLoopFuture<VerifiedPeer>
    let ready: EventLoopFuture<Void>
}

final class DialBox: Sendable {
    private let value = NIOLockedValueBox<DialResult?>(nil)
    func set(_ result: DialResult) { value.withLockedValue { $0 = result } }
    func get() -> DialResult? { value.withLockedValue { $0 } }
}

/// Runs `body` in a task on `loop`, failing with `error` if it takes longer than `timeout`.
func withDeadline<T: Sendable>(_ timeout: TimeAmount, on loop: any EventLoop, error: HBONEError, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let promise = loop.makePromise(of: T.self)
    let timer = loop.scheduleTask(in: timeout) { promise.fail(error) }
    let task = loop.runTask {
        do { promise.succeed(try await body()) } catch { promise.fail(error) }
    }
    defer {
        timer.cancel()
        task.cancel()
    }
    return try await promise.futureResult.get()
}
