import NIOCore
import NIOHTTP2

/// Sends an HTTP/2 PING every `interval` on a client connection and closes the
/// connection with ``HBONEError/keepaliveTimeout`` when one is not answered within `timeout`.
///
/// PINGs start with the peer's first frame (its SETTINGS): before that the TLS handshake
/// is still running, nothing could answer, and the dial's own timeout applies.
final class HBONEKeepaliveHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let keepalive: HBONEKeepalive
    private var pingTask: Scheduled<Void>?
    private var timeoutTask: Scheduled<Void>?
    private var outstanding: UInt64?
    private var counter: UInt64 = 0x4842_4F4E_4500_0000  // "HBONE"

    init(keepalive: HBONEKeepalive) {
        self.keepalive = keepalive
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { cancel() }

    private func cancel() {
        pingTask?.cancel()
        timeoutTask?.cancel()
        pingTask = nil
        timeoutTask = nil
    }

    private var started = false

    private func schedulePing(context: ChannelHandlerContext) {
        guard pingTask == nil else { return }
        started = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pingTask = context.eventLoop.scheduleTask(in: keepalive.interval) {
            let (this, context) = bound.value
            this.pingTask = nil
            this.sendPing(context: context)
        }
    }

    private func sendPing(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if outstanding == nil {
            counter &+= 1
            outstanding = counter
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: counter), ack: false))), promise: nil)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            timeoutTask = context.eventLoop.scheduleTask(in: keepalive.timeout) {
                let (this, context) = bound.value
                guard this.outstanding != nil else { return }
                context.fireErrorCaught(HBONEError.keepaliveTimeout)
                context.close(promise: nil)
            }
        }
        schedulePing(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !started { schedulePing(context: context) }
        let frame = unwrapInboundIn(data)
        if case .ping(let ping, ack: true) = frame.payload, let outstanding, ping.hboneValue == outstanding {
            self.outstanding = nil
            timeoutTask?.cancel()
            timeoutTask = nil
            return
        }
        context.fireChannelRead(data)
    }
}

extension HTTP2PingData {
    var hboneValue: UInt64 {
        let b = bytes
        return [b.0, b.1, b.2, b.3, b.4, b.5, b.6, b.7].reduce(0) { ($0 << 8) | UInt64($1) }
    }
}
