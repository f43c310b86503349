import NIOCore
import NIOHTTP2

/// Turns an established HBONE stream's DATA frames into bytes and back.
///
/// Inbound `endStream` becomes `ChannelEvent.inputClosed`; `close(mode: .output)`
/// sends an empty DATA frame with `endStream` (TCP half-close), `close(mode: .all)`
/// resets the stream if it is still open.
final class HBONEStreamDataCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var outputClosed = false
    private var inputClosed = false

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
            context.fireErrorCaught(HBONEError.streamReset(code: UInt32(code.networkCode)))
        default:
            break
        }
    }

    private func closeInput(context: ChannelHandlerContext) {
        guard !inputClosed else { return }
        inputClosed = true
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        guard !outputClosed else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(bytes)))), promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .output:
            guard !outputClosed else {
                promise?.succeed(())
                return
            }
            outputClosed = true
            let end = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(context.channel.allocator.buffer(capacity: 0)), endStream: true))
            context.writeAndFlush(wrapOutboundOut(end), promise: promise)
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        case .all:
            context.close(mode: .all, promise: promise)
        }
    }
}
