import NIOCore
import NIOPosix

/// Answers `GET /healthz/ready` with 200 once `isReady` says so (503 before; 404 for anything else) over HTTP/1.1.
enum ReadinessServer {
    static func start(address: (String, Int), isReady: @escaping @Sendable () -> Bool) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReadinessHandler(isReady: isReady))
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
    private let isReady: @Sendable () -> Bool

    init(isReady: @escaping @Sendable () -> Bool) { self.isReady = isReady }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        request += bytes.readString(length: bytes.readableBytes) ?? ""
        guard request.contains("\r\n\r\n") || request.count > 8192 else { return }
        let known = request.hasPrefix("GET /healthz/ready ")
        let ready = known && isReady()
        let body = ready ? "ready\n" : known ? "not ready: no mesh state yet\n" : "not found\n"
        let head = ready ? "HTTP/1.1 200 OK" : known ? "HTTP/1.1 503 Service Unavailable" : "HTTP/1.1 404 Not Found"
        let response = "\(head)\r\ncontent-type: text/plain\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).whenComplete { _ in channel.close(promise: nil) }
    }
}
