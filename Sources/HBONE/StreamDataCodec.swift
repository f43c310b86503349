import NIOCore
import NIOHTTP2

/// Turns an established HBONE stream's DATA frames into bytes and back.
///
/// Inbound `endStream` becomes `ChannelEvent.inputClosed`; `close(mode: .output)`
/// sends an empty DATA frame with `endStream` (TCP half-close), `close(mode: .all)`
/// resets the stream if it is still open.
///
/// On a connection with an ``HBONEDataPath`` the codec registers its stream with it
/// (when added, or when the CONNECT is answered 200): DATA then bypasses NIOHTTP2 and
/// the stream channel in both directions, writability is reported with
/// ``HBONEStreamEvent/writable(_:)`` and the reader's pauses are taken from
/// ``HBONEStreamEvent/consuming(_:)``. END_STREAM, trailers and resets still go through NIOHTTP2.
final class HBONEStreamDataCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// When the stream joins the connection's ``HBONEDataPath``, if it has one.
    enum FastPath {
        /// Never: DATA always goes through NIOHTTP2's stream channel.
        case off
        /// As soon as the codec is added (the server adds it once the stream is answered 200).
        case whenAdded
        /// When ``HBONEStreamEvent/established`` arrives (the client, on the 200).
        case whenEstablished
    }

    private let fastPath: FastPath
    private var fast: (path: HBONEDataPath, stream: HBONEDataPath.Stream)?
    private var context: ChannelHandlerContext?
    private var outputClosed = false
    private var inputClosed = false
    private var endPromise: EventLoopPromise<Void>?

    init(fastPath: FastPath = .off) {
        self.fastPath = fastPath
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if fastPath == .whenAdded { joinFastPath(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        leaveFastPath()
        self.context = nil
    }

    private func joinFastPath(context: ChannelHandlerContext) {
        guard fast == nil, !outputClosed, !inputClosed,
              let parent = context.channel.parent,
              let path = try? parent.pipeline.syncOperations.handler(type: HBONEDataPath.self),
              let id = try? context.channel.syncOptions?.getOption(HTTP2StreamChannelOptions.streamID),
              let stream = path.register(self, streamID: Int(id))
        else { return }
        fast = (path, stream)
    }

    private func leaveFastPath() {
        guard let fast else { return }
        self.fast = nil
        fast.path.deregister(fast.stream)
        if let promise = endPromise {
            endPromise = nil
            promise.fail(ChannelError.ioOnClosedChannel)
        }
    }

    // MARK: Called by HBONEDataPath

    func receive(_ bytes: ByteBuffer) {
        context?.fireChannelRead(wrapInboundOut(bytes))
    }

    func receiveComplete() {
        context?.fireChannelReadComplete()
    }

    func writabilityChanged(_ writable: Bool) {
        context?.fireUserInboundEventTriggered(HBONEStreamEvent.writable(writable))
    }

    /// Everything queued on the fast path is out: end the stream through NIOHTTP2.
    func sendEndStream() {
        guard let context else { return }
        let promise = endPromise
        endPromise = nil
        let end = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(context.channel.allocator.buffer(capacity: 0)), endStream: true))
        context.writeAndFlush(wrapOutboundOut(end), promise: promise)
    }

    /// The peer broke this stream's flow control (the data path has let it go): reset it with FLOW_CONTROL_ERROR.
    func resetForFlowControl() {
        fast = nil
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(.rstStream(.flowControlError)), promise: nil)
        context.close(promise: nil)
    }

    // MARK: Called by a splice partner on this event loop

    /// Writes `bytes` as if they had come down the stream's pipeline to this codec.
    func spliceWrite(_ bytes: ByteBuffer) {
        guard let context else { return }
        write(context: context, data: NIOAny(bytes), promise: nil)
    }

    /// Flushes as if a flush had come down the stream's pipeline to this codec.
    func spliceFlush() {
        guard let context else { return }
        flush(context: context)
    }

    // MARK: Pipeline

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .data(let frame):
            if case .byteBuffer(let bytes) = frame.data, bytes.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(bytes))
            }
            if frame.endStream { closeInput(context: context) }
        case .headers(let headers):
            // Trailers end the stream; they carry nothing for a TCP tunnel.
            if headers.endStream { closeInput(context: context) }
        case .rstStream(let code):
            leaveFastPath()
            context.fireErrorCaught(HBONEError.streamReset(code: UInt32(code.networkCode)))
        default:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case HBONEStreamEvent.established = event {
            if fastPath == .whenEstablished { joinFastPath(context: context) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // On the fast path the stream channel's own writability does not describe the data path.
        if fast == nil { context.fireChannelWritabilityChanged() }
    }

    private func closeInput(context: ChannelHandlerContext) {
        guard !inputClosed else { return }
        inputClosed = true
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    func channelInactive(context: ChannelHandlerContext) {
        leaveFastPath()
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        guard !outputClosed else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        if let fast {
            fast.path.send(fast.stream, bytes)
            promise?.succeed(())
            return
        }
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(bytes)))), promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        if let fast {
            fast.path.flush()
        } else {
            context.flush()
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if case HBONEStreamEvent.consuming(let consuming) = event {
            if let fast { fast.path.setConsuming(fast.stream, consuming) }
            promise?.succeed(())
            return
        }
        context.triggerUserOutboundEvent(event, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .output:
            guard !outputClosed else {
                promise?.succeed(())
                return
            }
            outputClosed = true
            endPromise = promise
            if let fast {
                // END_STREAM follows whatever the data path still has queued for the stream.
                fast.path.closeOutput(fast.stream)
            } else {
                sendEndStream()
            }
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .all:
            leaveFastPath()
            context.close(mode: .all, promise: promise)
        }
    }
}
