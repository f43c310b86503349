import NIOCore
import NIOPosix

/// Answers `GET /healthz/ready` with 200 (404 for anything else) over HTTP/1.1.
enum ReadinessServer {
    static func start(address: (String, Int)) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReadinessHandler())
                }
            }
            .bind(host: address.0, port: address.1)
            .get()
    }
}

final class ReadinessHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var request = ""

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        request += bytes.readString(length: bytes.readableBytes) ?? ""
        guard request.contains("\r\n\r\n") || request.count > 8192 else { return }
        let ready = request.hasPrefix("GET /healthz/ready ")
        let body = ready ? "ready\n" : "not found\n"
        let head = ready ? "HTTP/1.1 200 OK" : "HTTP/1.1 404 Not Found"
        let response = "\(head)\r\ncontent-type: text/plain\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).whenComplete { _ in channel.close(promise: nil) }
    }
}
