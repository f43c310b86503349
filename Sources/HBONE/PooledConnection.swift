import MeshIdentity
import NIOCore
import NIOHTTP2
import NIOConcurrencyHelpers

/// The key under which HBONE connections are pooled (as ztunnel's): source identity,
/// destination identities, destination (HBONE) address and source address.
public struct HBONEPoolKey: Sendable, Hashable, CustomStringConvertible {
    /// The identity our SVID presents.
    public var sourceIdentity: SPIFFEID
    /// The identities the peer may present (sorted).
    public var destinationIdentities: [SPIFFEID]
    /// The peer's HBONE address.
    public var destination: SocketAddress
    /// The original source IP the streams are opened for, if any.
    public var sourceAddress: String?

    public init(sourceIdentity: SPIFFEID, destinationIdentities: Set<SPIFFEID>, destination: SocketAddress, sourceAddress: String?) {
        self.sourceIdentity = sourceIdentity
        self.destinationIdentities = destinationIdentities.sorted()
        self.destination = destination
        self.sourceAddress = sourceAddress
    }

    public var description: String {
        "\(sourceIdentity) → \(destinationIdentities.map(\.description).joined(separator: "|"))@\(destination) from \(sourceAddress ?? "-")"
    }
}

/// One pooled HTTP/2 connection: counts its streams against the peer's limit,
/// stops taking new streams after GOAWAY, and closes itself when idle too long.
final class PooledConnection: Sendable {
    private struct State {
        var active = 0
        var limit: Int
        var draining = false
        var closed = false
        var idleGeneration: UInt64 = 0
        var lastPeerSettings: Int?
        var failure: HBONEError?
    }

    let channel: any Channel
    let key: HBONEPoolKey
    /// Whether the connection has an ``HBONEDataPath`` (only spliced streams may use it).
    let fastDataPath: Bool
    private let idleTimeout: TimeAmount
    private let configuredLimit: Int
    private let state: NIOLockedValueBox<State>
    private let multiplexerBox = NIOLockedValueBox<NIOHTTP2Handler.StreamMultiplexer?>(nil)

    private let peerBox = NIOLockedValueBox<VerifiedPeer?>(nil)
    private let onFailure: @Sendable (PooledConnection, HBONEError) -> Void

    /// `onFailure` hears, once, why this side gave the connection up (a keepalive PING unanswered).
    init(channel: any Channel, key: HBONEPoolKey, maxStreams: Int, idleTimeout: TimeAmount, fastDataPath: Bool,
         onFailure: @escaping @Sendable (PooledConnection, HBONEError) -> Void = { _, _ in }) {
        self.onFailure = onFailure
        self.channel = channel
        self.key = key
        self.fastDataPath = fastDataPath
        self.idleTimeout = idleTimeout
        self.configuredLimit = maxStreams
        self.state = NIOLockedValueBox(State(limit: maxStreams))
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLockedValue { $0.closed = true }
        }
    }

    /// The verified peer, set once the handshake completed.
    var peer: VerifiedPeer? {
        get { peerBox.withLockedValue { $0 } }
        set { peerBox.withLockedValue { $0 = newValue } }
    }

    var multiplexer: NIOHTTP2Handler.StreamMultiplexer? {
        get { multiplexerBox.withLockedValue { $0 } }
        set { multiplexerBox.withLockedValue { $0 = newValue } }
    }

    /// Takes a stream slot if the connection is open, not draining and below its limit.
    func tryReserve() -> Bool {
        state.withLockedValue { state in
            guard !state.closed, !state.draining, state.active < state.limit else { return false }
            state.active += 1
            state.idleGeneration &+= 1
            return true
        }
    }

    /// Returns a stream slot; an idle connection closes after the idle timeout.
    func release() {
        let generation: UInt64? = state.withLockedValue { state in
            state.active -= 1
            guard state.active == 0 else { return nil }
            state.idleGeneration &+= 1
            return state.idleGeneration
        }
        guard let generation else { return }
        let channel = self.channel
        channel.eventLoop.scheduleTask(in: idleTimeout) { [weak self] in
            guard let self else { return }
            let idle = self.state.withLockedValue { $0.active == 0 && $0.idleGeneration == generation }
            if idle {
                self.state.withLockedValue { $0.draining = true }
                channel.close(promise: nil)
            }
        }
    }

    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS caps our own per-connection limit.
    func peerSettings(maxConcurrentStreams: Int?) {
        state.withLockedValue { state in
            if let maxConcurrentStreams { state.lastPeerSettings = maxConcurrentStreams }
            state.limit = min(configuredLimit, state.lastPeerSettings ?? configuredLimit)
        }
    }

    /// GOAWAY received: no new streams; open ones may finish.
    func markDraining() { state.withLockedValue { $0.draining = true } }

    /// The connection failed (its close follows, which may wait for TLS's close_notify): no new
    /// streams from now on, and the pool hears why.
    func fail(_ error: HBONEError) {
        let first = state.withLockedValue { state in
            state.draining = true
            defer { if state.failure == nil { state.failure = error } }
            return state.failure == nil
        }
        if first { onFailure(self, error) }
    }

    var isUsable: Bool { state.withLockedValue { !$0.closed && !$0.draining } }
    var activeStreams: Int { state.withLockedValue { $0.active } }
    var streamLimit: Int { state.withLockedValue { $0.limit } }
}

/// Watches connection-level frames of a pooled connection: SETTINGS (stream limit, readiness) and GOAWAY.
final class HBONEConnectionStateHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private let connection: PooledConnection
    private let ready: EventLoopPromise<Void>

    init(connection: PooledConnection, ready: EventLoopPromise<Void>) {
        self.connection = connection
        self.ready = ready
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .settings(.settings(let settings)):
            let limit = settings.last(where: { $0.parameter == .maxConcurrentStreams })?.value
            connection.peerSettings(maxConcurrentStreams: limit)
            complete(.success(()))
        case .goAway:
            connection.markDraining()
        default:
            break
        }
    }

    private var readyDone = false

    private func complete(_ result: Result<Void, any Error>) {
        guard !readyDone else { return }
        readyDone = true
        ready.completeWith(result)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HBONEError { connection.fail(error) }
        complete(.failure(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.markDraining()
        complete(.failure(HBONEError.closedBeforeResponse))
        context.fireChannelInactive()
    }
}
