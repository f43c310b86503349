import HBONE
import MeshIdentity
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// A minimal HTTP/2-over-mTLS client that sends arbitrary request headers, for
/// requests HBONEClient never sends (non-CONNECT methods, bad authorities).
enum RawHTTP2Client {
    final class StatusCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTP2Frame.FramePayload
        let promise: EventLoopPromise<Int>
        init(promise: EventLoopPromise<Int>) { self.promise = promise }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .headers(let headers) = unwrapInboundIn(data) {
                promise.succeed(headers.headers.first(name: ":status").flatMap { Int($0) } ?? -1)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(HBONEError.closedBeforeResponse)
        }
    }

    /// Sends `headers` on one stream and returns the response status.
    static func status(of headers: [(String, String)], to address: SocketAddress, tls: MeshTLS, expect serverID: SPIFFEID) async throws -> Int {
        // HTTP/2 is configured before the handshake so the server's first SETTINGS is never missed.
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(tls.makeClientHandlers(authorizer: .exactly(serverID)))
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client,
                        connectionConfiguration: .init(),
                        streamConfiguration: .init()
                    ) { $0.eventLoop.makeSucceededVoidFuture() }
                }
            }
            .connect(to: address)
            .get()
        defer { channel.close(promise: nil) }
        _ = try await channel.verifiedPeer()
        let multiplexer = try await channel.pipeline.handler(type: NIOHTTP2Handler.self).flatMapThrowing { try $0.syncMultiplexer() }.get()
        let promise = channel.eventLoop.makePromise(of: Int.self)
        let stream = try await multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(StatusCollector(promise: promise))
            }
        }.get()
        try await stream.writeAndFlush(HTTP2Frame.FramePayload.headers(.init(headers: HPACKHeaders(headers)))).get()
        return try await promise.futureResult.get()
    }
}
