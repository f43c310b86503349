import HBONE
import Logging
import NIOCore
import NIOPosix

/// A SOCKS5 (RFC 1928) listener for outbound traffic: no authentication, CONNECT only.
///
/// ztunnel's explicit outbound entry, beside in-pod capture: for embedding and tests, where the
/// application is told to use a proxy instead of having its traffic captured. Keep it on loopback.
public enum SOCKS5Server {
    /// Binds the listener; each accepted connection's CONNECT destination goes to `router`.
    public static func start(address: (String, Int), router: OutboundRouter, logger: Logger) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SOCKS5Handler(router: router, logger: logger))
                    // Keeps bytes that arrive while the tunnel is being opened.
                    try channel.pipeline.syncOperations.addHandler(HBONEHoldingHandler())
                }
            }
            .bind(host: address.0, port: address.1)
            .get()
    }
}

/// Reads the SOCKS5 greeting and CONNECT request (``SOCKS5Parser``), then hands the connection to the outbound router.
final class SOCKS5Handler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State { case greeting, request, connecting, refused }
    private var state = State.greeting
    private var buffer = ByteBuffer()
    private let router: OutboundRouter
    private let logger: Logger

    init(router: OutboundRouter, logger: Logger) {
        self.router = router
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .connecting:
            // The tunnel's splice sits behind this handler until it is removed.
            context.fireChannelRead(data)
            return
        case .refused:
            return  // the connection is closing
        case .greeting, .request:
            break
        }
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        process(context: context)
    }

    private func process(context: ChannelHandlerContext) {
        do throws(SOCKS5Error) {
            switch state {
            case .greeting:
                guard try SOCKS5Parser.parseGreeting(&buffer) else { return }
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, 0])), promise: nil)
                state = .request
                process(context: context)
            case .request:
                guard let request = try SOCKS5Parser.parseRequest(&buffer) else { return }
                state = .connecting
                connect(context: context, host: request.host, port: request.port)
            case .connecting, .refused:
                break
            }
        } catch {
            logger.info("SOCKS5 handshake refused", metadata: ["reason": "\(error)", "peer": "\(context.remoteAddress.map { "\($0)" } ?? "-")"])
            let inGreeting = state == .greeting
            state = .refused
            buffer.clear()
            if inGreeting {
                // Method selection reply: X'FF', no acceptable methods (RFC 1928 §3).
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, 0xFF])), promise: nil)
                context.close(promise: nil)
            } else {
                reply(context: context, code: error.replyCode)
            }
        }
    }

    private func reply(context: ChannelHandlerContext, code: UInt8) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, code, 0, 1, 0, 0, 0, 0, 0, 0])), promise: nil)
        if code != 0 { context.close(promise: nil) }
    }

    private func connect(context: ChannelHandlerContext, host: String, port: Int) {
        let channel = context.channel
        let router = self.router
        let logger = self.logger
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // Stop reading: the splice starts reading once the tunnel is up.
        channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in
            channel.eventLoop.makeFutureWithLoopTask {
                // The reply must precede any tunnelled byte, so the tunnel is opened first
                // and the success reply is written before the splice starts reading.
                // SOCKS5 success reply (bound address 0.0.0.0:0), written before any forwarded byte.
                let success = ByteBuffer(bytes: [5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
                _ = try await router.connect(host: host, port: port, source: channel.remoteAddress, socket: channel, prelude: success) { route, sent, received in
                    let tunnelled = route.workload?.tunnelProtocol == .hbone
                    logger.info(tunnelled ? "outbound tunnel closed" : "outbound passthrough closed", metadata: [
                        "destination": "\(route.address):\(route.port)", "workload": "\(route.workload?.uid ?? "-")",
                        "dst.identity": "\(tunnelled ? route.workload.flatMap { try? $0.identity() }.map { "\($0)" } ?? "-" : "-")",
                        "bytes_to_destination": "\(sent)", "bytes_from_destination": "\(received)",
                    ])
                }
            }.whenComplete { result in
                let (this, context) = bound.value
                switch result {
                case .success:
                    if this.buffer.readableBytes > 0 {
                        // Bytes the client sent right behind its request.
                        context.fireChannelRead(NIOAny(this.buffer))
                        context.fireChannelReadComplete()
                        this.buffer.clear()
                    }
                    context.pipeline.syncOperations.removeHandler(this, promise: nil)
                case .failure(let error):
                    let code = (error as? OutboundError)?.socksReply ?? 0x01
                    logger.info("outbound connection refused", metadata: ["destination": "\(host):\(port)", "reason": "\(error)", "socks_reply": "\(code)"])
                    this.reply(context: context, code: code)
                }
            }
        }
    }
}
