import HBONE
import Logging
import NodeProxy
import XDSClient
import NIOCore
import NIOPosix

/// A SOCKS5 (RFC 1928) listener for outbound traffic: no authentication, CONNECT only.
enum SOCKS5Server {
    static func start(address: (String, Int), router: OutboundRouter, logger: Logger) async throws -> any Channel {
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

/// Parses the SOCKS5 greeting and CONNECT request, then hands the connection to the outbound router.
final class SOCKS5Handler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State { case greeting, request, connecting }
    private var state = State.greeting
    private var buffer = ByteBuffer()
    private let router: OutboundRouter
    private let logger: Logger

    init(router: OutboundRouter, logger: Logger) {
        self.router = router
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .connecting = state {
            // The tunnel's splice sits behind this handler until it is removed.
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        process(context: context)
    }

    private func process(context: ChannelHandlerContext) {
        switch state {
        case .greeting:
            guard buffer.readableBytes >= 2, let count = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self),
                  buffer.readableBytes >= 2 + Int(count) else { return }
            let version = buffer.readInteger(as: UInt8.self)
            let methods = buffer.readBytes(length: Int(buffer.readInteger(as: UInt8.self) ?? 0)) ?? []
            guard version == 5, methods.contains(0) else {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, 0xFF])), promise: nil)
                context.close(promise: nil)
                return
            }
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [5, 0])), promise: nil)
            state = .request
            process(context: context)
        case .request:
            guard let (host, port) = parseRequest(context: context) else { return }
            state = .connecting
            connect(context: context, host: host, port: port)
        case .connecting:
            break
        }
    }

    /// VER CMD RSV ATYP DST.ADDR DST.PORT; nil until complete.
    private func parseRequest(context: ChannelHandlerContext) -> (String, Int)? {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= 5, let atyp = buffer.getInteger(at: start + 3, as: UInt8.self) else { return nil }
        let addressLength: Int
        switch atyp {
        case 1: addressLength = 4
        case 4: addressLength = 16
        case 3: addressLength = 1 + Int(buffer.getInteger(at: start + 4, as: UInt8.self) ?? 0)
        default:
            reply(context: context, code: 0x08)
            return nil
        }
        guard buffer.readableBytes >= 4 + addressLength + 2 else { return nil }
        let header = buffer.readBytes(length: 4) ?? []
        guard header[0] == 5, header[1] == 1 else {
            reply(context: context, code: 0x07)  // command not supported
            return nil
        }
        let host: String
        switch atyp {
        case 1:
            host = (buffer.readBytes(length: 4) ?? []).map(String.init).joined(separator: ".")
        case 4:
            let raw = buffer.readBytes(length: 16) ?? []
            host = stride(from: 0, to: 16, by: 2).map { String(UInt16(raw[$0]) << 8 | UInt16(raw[$0 + 1]), radix: 16) }.joined(separator: ":")
        default:
            let length = Int(buffer.readInteger(as: UInt8.self) ?? 0)
            host = buffer.readString(length: length) ?? ""
        }
        let port = Int(buffer.readInteger(as: UInt16.self) ?? 0)
        return (host, port)
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
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.completeWithTask {
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
            }
            promise.futureResult.whenComplete { result in
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
