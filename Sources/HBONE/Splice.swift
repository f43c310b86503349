import NIOCore
import NIOHTTP2
import NIOPosix
import NIOConcurrencyHelpers

/// Signals exchanged between the two halves of a splice, always delivered on the receiver's event loop.
enum SpliceSignal: Sendable {
    /// The partner's writability changed.
    case partnerWritable(Bool)
    /// The partner's input ended cleanly: close our output once pending writes are flushed.
    case closeOutput
    /// The partner ended abnormally: abort our side (TCP RST / RST_STREAM).
    case reset
}

/// Completion of a splice, shared by its two halves (which may be on different event loops):
/// each half counts the bytes it read and reports them when it closes.
final class SpliceSession: Sendable {
    private struct State {
        var bytes: [UInt64] = [0, 0]
        var closed = 0
    }

    private let state = NIOLockedValueBox(State())
    private let onFinish: @Sendable (_ fromA: UInt64, _ fromB: UInt64) -> Void

    init(onFinish: @escaping @Sendable (_ fromA: UInt64, _ fromB: UInt64) -> Void) {
        self.onFinish = onFinish
    }

    func sideClosed(side: Int, bytes: UInt64) {
        let done: (UInt64, UInt64)? = state.withLockedValue { state in
            state.bytes[side] = bytes
            state.closed += 1
            return state.closed == 2 ? (state.bytes[0], state.bytes[1]) : nil
        }
        if let done { onFinish(done.0, done.1) }
    }
}

/// One half of a bidirectional byte splice between two channels (an HTTP/2 stream
/// and a TCP socket, or two sockets), possibly on different event loops.
///
/// Bytes read from this channel are written to the partner; this channel only
/// reads while the partner is writable (backpressure through the flow-control
/// windows and socket buffers). A clean end of input half-closes the partner's
/// output after its pending writes; an abnormal close resets the partner.
final class SpliceHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How this handler's own channel is closed.
    enum Kind {
        /// A TCP socket: half-close after pending writes, reset with SO_LINGER 0.
        case socket
        /// An HTTP/2 stream behind ``HBONEStreamDataCodec``.
        case stream
    }

    private let partner: any Channel
    private let kind: Kind
    private let side: Int
    private let session: SpliceSession
    private var partnerWritable = true
    private var pendingRead = false
    private var inputEnded = false
    private var outputEnded = false
    private var pendingFlush = false
    private var bytesRead: UInt64 = 0
    /// The partner stream's codec when it is on this event loop: bytes go to it directly
    /// instead of through the stream channel's pipeline (what that pipeline would do with them).
    private var sink: HBONEStreamDataCodec?

    init(partner: any Channel, kind: Kind, side: Int, session: SpliceSession) {
        self.partner = partner
        self.kind = kind
        self.side = side
        self.session = session
    }

    private var finished = false

    func handlerAdded(context: ChannelHandlerContext) {
        if kind == .socket, partner.eventLoop === context.eventLoop {
            sink = try? partner.pipeline.syncOperations.handler(type: HBONEStreamDataCodec.self)
        }
        if !context.channel.isActive {
            // Closed before the splice was installed: channelInactive will not come.
            finish(context: context)
        }
    }

    private func finish(context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        if !errored && outputEnded {
            // A socket whose output we already shut down closes fully on EOF without an
            // inputClosed event: that is a clean end of its input too.
            if !inputEnded { partner.pipeline.fireUserInboundEventTriggered(SpliceSignal.closeOutput) }
        } else {
            partner.pipeline.fireUserInboundEventTriggered(SpliceSignal.reset)
        }
        session.sideClosed(side: side, bytes: bytesRead)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        bytesRead &+= UInt64(bytes.readableBytes)
        if let sink {
            sink.spliceWrite(bytes)
        } else {
            partner.write(bytes, promise: nil)
        }
        pendingFlush = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushPartner()
        context.fireChannelReadComplete()
    }

    private func flushPartner() {
        guard pendingFlush else { return }
        pendingFlush = false
        if let sink {
            sink.spliceFlush()
        } else {
            partner.flush()
        }
    }

    func read(context: ChannelHandlerContext) {
        if partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        partner.pipeline.fireUserInboundEventTriggered(SpliceSignal.partnerWritable(context.channel.isWritable))
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let signal as SpliceSignal:
            handle(signal, context: context)
        case HBONEStreamEvent.writable(let writable):
            // A stream on HBONEDataPath: its writability comes from the data path, not the stream channel.
            partner.pipeline.fireUserInboundEventTriggered(SpliceSignal.partnerWritable(writable))
        case ChannelEvent.inputClosed:
            inputEnded = true
            flushPartner()
            partner.pipeline.fireUserInboundEventTriggered(SpliceSignal.closeOutput)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func handle(_ signal: SpliceSignal, context: ChannelHandlerContext) {
        switch signal {
        case .partnerWritable(let writable):
            partnerWritable = writable
            if kind == .stream {
                // A stream on HBONEDataPath returns its flow-control window only while we take its bytes.
                context.triggerUserOutboundEvent(HBONEStreamEvent.consuming(writable), promise: nil)
            }
            if writable, pendingRead {
                pendingRead = false
                context.read()
            }
        case .closeOutput:
            outputEnded = true
            switch kind {
            case .stream:
                context.close(mode: .output, promise: nil)
            case .socket:
                // Writes complete in order: once this empty write is done, nothing is pending.
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                    channel.close(mode: .output, promise: nil)
                }
            }
        case .reset:
            abort(context: context)
        }
    }

    private func abort(context: ChannelHandlerContext) {
        switch kind {
        case .stream:
            context.close(promise: nil)
        case .socket:
            let channel = context.channel
            // SO_LINGER 0 turns the close into a TCP RST.
            if let provider = channel as? any SocketOptionProvider {
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
        }
    }

    private var errored = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errored = true
        // Any error on one side ends the splice; the close below resets the partner.
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context: context)
        context.fireChannelInactive()
    }
}

/// Holds a channel's bytes and end-of-input until an HBONE splice is in place, then replays them.
///
/// Add it in the initializer of a socket you will pass to ``HBONEClient/tunnel(_:splicingWith:prelude:onClose:)``:
/// even with `autoRead` off, NIO reads a socket whose peer half-closed, and those bytes must not be lost.
public final class HBONEHoldingHandler: ChannelInboundHandler, RemovableChannelHandler {
    /// Adds a holding handler to `channel` unless it has one, so that bytes read
    /// before a splice is in place are kept.
    static func ensure(on channel: any Channel) async throws {
        try await channel.eventLoop.submit {
            let sync = channel.pipeline.syncOperations
            if (try? sync.handler(type: HBONEHoldingHandler.self)) == nil {
                try sync.addHandler(HBONEHoldingHandler())
            }
        }.get()
    }

    public typealias InboundIn = ByteBuffer
    private var held: [ByteBuffer] = []
    private var inputClosed = false

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        held.append(unwrapInboundIn(data))
    }

    public func channelReadComplete(context: ChannelHandlerContext) {}

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        for bytes in held { context.fireChannelRead(NIOAny(bytes)) }
        if !held.isEmpty { context.fireChannelReadComplete() }
        held.removeAll()
        if inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
    }
}

@available(*, unavailable)
extension HBONEHoldingHandler: Sendable {}

extension SpliceHandler {
    /// Installs a splice between `stream` (an HBONE stream with ``HBONEStreamDataCodec``)
    /// and `socket` (a TCP channel with `allowRemoteHalfClosure`), then lets both read.
    /// `socket` may live on another event loop (its bytes then hop threads).
    static func join(
        stream: any Channel,
        socket: any Channel,
        onFinish: @escaping @Sendable (_ fromStream: UInt64, _ fromSocket: UInt64) -> Void
    ) -> EventLoopFuture<Void> {
        join((stream, .stream), (socket, .socket), onFinish: onFinish)
    }

    /// Installs a splice between two channels of the given kinds, then releases what
    /// each side's ``HBONEHoldingHandler`` held (only once both halves are in place, so a
    /// held end of input reaches the partner), then lets both read.
    static func join(
        _ a: (channel: any Channel, kind: Kind),
        _ b: (channel: any Channel, kind: Kind),
        onFinish: @escaping @Sendable (_ fromA: UInt64, _ fromB: UInt64) -> Void
    ) -> EventLoopFuture<Void> {
        let session = SpliceSession(onFinish: onFinish)
        // Runs synchronously when called on the channel's loop (nothing can be read in between).
        @Sendable func onLoop(_ channel: any Channel, _ body: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void) -> EventLoopFuture<Void> {
            let loop = channel.eventLoop
            @Sendable func run() -> EventLoopFuture<Void> {
                loop.makeCompletedFuture { try body(channel.pipeline.syncOperations) }
            }
            return loop.inEventLoop ? run() : loop.flatSubmit(run)
        }
        @Sendable func install(_ side: (channel: any Channel, kind: Kind), partner: any Channel, index: Int) -> EventLoopFuture<Void> {
            onLoop(side.channel) { sync in
                try sync.addHandler(SpliceHandler(partner: partner, kind: side.kind, side: index, session: session))
            }
        }
        @Sendable func release(_ channel: any Channel) -> EventLoopFuture<Void> {
            onLoop(channel) { sync in
                if let holding = try? sync.handler(type: HBONEHoldingHandler.self) {
                    sync.removeHandler(holding, promise: nil)
                }
            }
        }
        // Once the held bytes are released the splice may finish (and close both channels)
        // before reading is switched on; a channel closed by then has nothing left to read.
        @Sendable func startReading(_ channel: any Channel) -> EventLoopFuture<Void> {
            channel.setOption(ChannelOptions.autoRead, value: true).flatMapError { error in
                if let error = error as? ChannelError, error == .ioOnClosedChannel { return channel.eventLoop.makeSucceededVoidFuture() }
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        return install(a, partner: b.channel, index: 0).and(install(b, partner: a.channel, index: 1)).flatMap { _ in
            release(a.channel).and(release(b.channel))
        }.flatMap { _ in
            startReading(b.channel)
        }.flatMap {
            startReading(a.channel)
        }
    }
}

/// Splices an accepted socket with a plain TCP connection to a destination: the
/// passthrough for destinations outside the mesh (workload protocol TCP), with the
/// same backpressure, half-close and reset semantics as an HBONE tunnel.
///
/// The outgoing connection is made on `socket`'s event loop, so bytes never hop threads.
/// Add an ``HBONEHoldingHandler`` to `socket` (last in its pipeline) so that bytes read before
/// the splice is in place are kept.
public enum TCPPassthrough {
    /// Connects to `destination`, writes `prelude` (for example a SOCKS5 success reply)
    /// to `socket`, then splices the two; returns once bytes flow both ways.
    /// `onClose` gets the byte counts (to the destination, from it) when both sides ended.
    /// A failed connect throws ``TCPPassthroughError/connectFailed(destination:reason:)`` and leaves `socket` open.
    /// With a `connector` that holds the namespace of `workload` (the source), the connection is made from inside it.
    public static func splice(
        _ socket: any Channel,
        to destination: SocketAddress,
        prelude: ByteBuffer? = nil,
        connectTimeout: TimeAmount = .seconds(10),
        connector: (any WorkloadConnector)? = nil,
        workload: String? = nil,
        onClose: @escaping @Sendable (_ sent: UInt64, _ received: UInt64) -> Void = { _, _ in }
    ) async throws {
        try await HBONEHoldingHandler.ensure(on: socket)
        let upstream: any Channel
        do {
            let bootstrap = ClientBootstrap(group: socket.eventLoop)
                .connectTimeout(connectTimeout)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelOption(.autoRead, value: false)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                // What the destination sends before the splice is in place is held, not lost.
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HBONEHoldingHandler()) }
                }
            upstream = try await SourceBinding.connect(bootstrap, to: destination, from: nil, connector: connector, workload: workload, timeout: connectTimeout)
        } catch {
            throw TCPPassthroughError.connectFailed(destination: "\(destination)", reason: "\(error)")
        }
        do {
            if let prelude { try await socket.writeAndFlush(prelude) }
            try await SpliceHandler.join((socket, .socket), (upstream, .socket)) { fromSocket, fromUpstream in
                onClose(fromSocket, fromUpstream)
            }.get()
        } catch {
            upstream.close(promise: nil)
            throw error
        }
    }
}

/// Why a ``TCPPassthrough`` could not be set up.
public enum TCPPassthroughError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The TCP connect to the destination failed (refused, unreachable or timed out).
    case connectFailed(destination: String, reason: String)

    public var description: String {
        switch self {
        case .connectFailed(let destination, let reason):
            return "passthrough connect to \(destination) failed: \(reason)"
        }
    }
}
