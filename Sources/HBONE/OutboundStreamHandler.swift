import NIOCore
import NIOHPACK
import NIOHTTP2

/// Sends the HBONE CONNECT on a new client stream and completes when it is answered:
/// 200 lets DATA through to ``HBONEStreamDataCodec``; anything else fails with
/// ``HBONEError/connectRejected(status:authority:)``.
final class HBONEOutboundStreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let authority: HBONEAuthority
    private let forwarding: HBONEForwarding
    private let response: EventLoopPromise<Void>
    private var answered = false

    init(authority: HBONEAuthority, forwarding: HBONEForwarding, response: EventLoopPromise<Void>) {
        self.authority = authority
        self.forwarding = forwarding
        self.response = response
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { sendRequest(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendRequest(context: context)
        context.fireChannelActive()
    }

    private var sent = false

    private func sendRequest(context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        var headers = HPACKHeaders()
        headers.add(name: ":method", value: "CONNECT")
        headers.add(name: ":authority", value: authority.description)
        if let forwarded = forwarding.forwardedHeader { headers.add(name: "forwarded", value: forwarded) }
        if let baggage = forwarding.baggage { headers.add(name: "baggage", value: baggage) }
        if let traceparent = forwarding.traceparent { headers.add(name: "traceparent", value: traceparent) }
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        if answered {
            context.fireChannelRead(data)
            return
        }
        switch payload {
        case .headers(let headers):
            let status = headers.headers.first(name: ":status").flatMap { Int($0) } ?? 0
            if (100..<200).contains(status) { return }
            answered = true
            if status == 200 {
                // The stream's codec may now take DATA off NIOHTTP2 (HBONEDataPath).
                context.fireUserInboundEventTriggered(HBONEStreamEvent.established)
                response.succeed(())
                if headers.endStream { context.fireChannelRead(data) }
            } else {
                response.fail(HBONEError.connectRejected(status: status, authority: authority.description))
                context.close(promise: nil)
            }
        case .rstStream(let code):
            answered = true
            response.fail(HBONEError.streamReset(code: UInt32(code.networkCode)))
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !answered {
            answered = true
            response.fail(error)
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !answered {
            answered = true
            response.fail(HBONEError.closedBeforeResponse)
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if !answered {
            answered = true
            response.fail(HBONEError.closedBeforeResponse)
        }
    }
}
