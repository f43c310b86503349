import NIOCore
import NIOHTTP2
import NIOPosix
import Synchronization

/// Signals exchanged between the two halves of a splice, always delivered on the receiver's event loop.
enum SpliceSignal: Sendable {
    /// The partner's writability changed.
    case partnerWritable(Bool)
    /// The partner's input ended cleanly: close our output once pending writes are flushed.
    case closeOutput
    /// The partner ended abnormally: abort our side (TCP RST / RST_STREAM).
    case reset
}

/// Byte counters and completion of a splice, shared by its two halves.
final class SpliceSession: Sendable {
    private struct State {
        var bytes: [UInt64] = [0, 0]
        var closed = 0
    }

    private let state = Mutex(State())
    private let onFinish: @Sendable (_ fromA: UInt64, _ fromB: UInt64) -> Void

    init(onFinish: @escaping @Sendable (_ fromA: UInt64, _ fromB: UInt64) -> Void) {
        self.onFinish = onFinish
    }

    func count(side: Int, bytes: Int) {
        state.withLock { $0.bytes[side] &+= UInt64(bytes) }
    }

    func sideClosed() {
        let done: (UInt64, UInt64)? = state.withLock { state in
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

    init(partner: any Channel, kind: Kind, side: Int, session: SpliceSession) {
        self.partner = partner
        self.kind = kind
        self.side = side
        self.session = session
    }

    private var finished = false

    func handlerAdded(context: ChannelHandlerContext) {
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
        session.sideClosed()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        session.count(side: side, bytes: bytes.readableBytes)
        partner.write(bytes, promise: nil)
        pendingFlush = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if pendingFlush {
            pendingFlush = false
            partner.flush()
        }
        context.fireChannelReadComplete()
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
        case ChannelEvent.inputClosed:
            inputEnded = true
            if pendingFlush {
                pendingFlush = false
                partner.flush()
            }
            partner.pipeline.fireUserInboundEventTriggered(SpliceSignal.closeOutput)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func handle(_ signal: SpliceSignal, context: ChannelHandlerContext) {
        switch signal {
        case .partnerWritable(let writable):
            partnerWritable = writable
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
    /// Must run on `stream`'s event loop; `socket` may live elsewhere.
    static func join(
        stream: any Channel,
        socket: any Channel,
        onFinish: @escaping @Sendable (_ fromStream: UInt64, _ fromSocket: UInt64) -> Void
    ) -> EventLoopFuture<Void> {
        let session = SpliceSession(onFinish: onFinish)
        let addToStream = stream.eventLoop.makeCompletedFuture {
            let sync = stream.pipeline.syncOperations
            try sync.addHandler(SpliceHandler(partner: socket, kind: .stream, side: 0, session: session))
            if let holding = try? sync.handler(type: HBONEHoldingHandler.self) {
                sync.removeHandler(holding, promise: nil)
            }
        }
        let addToSocket = socket.eventLoop.flatSubmit {
            socket.eventLoop.makeCompletedFuture {
                let sync = socket.pipeline.syncOperations
                try sync.addHandler(SpliceHandler(partner: stream, kind: .socket, side: 1, session: session))
                if let holding = try? sync.handler(type: HBONEHoldingHandler.self) {
                    sync.removeHandler(holding, promise: nil)
                }
            }
        }
        return addToStream.and(addToSocket).flatMap { _ in
            socket.setOption(ChannelOptions.autoRead, value: true)
        }.flatMap {
            stream.setOption(ChannelOptions.autoRead, value: true)
        }
    }
}
