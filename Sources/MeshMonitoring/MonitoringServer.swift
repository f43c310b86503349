import Foundation
import NIOCore
import NIOConcurrencyHelpers
import NIOHTTP1
import NIOPosix

/// A reply of the monitoring endpoint.
public struct MonitoringReply: Sendable {
    public var status: HTTPResponseStatus
    public var contentType: String
    public var body: String

    public init(status: HTTPResponseStatus = .ok, contentType: String = "text/plain; charset=utf-8", body: String) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    /// 404 for a path nobody serves.
    public static let notFound = MonitoringReply(status: .notFound, body: "not found\n")
}

/// A request to the monitoring endpoint: method, path and query parameters.
public struct MonitoringRequest: Sendable {
    /// `GET`, `HEAD` or `POST`.
    public var method: String
    /// The path without the query.
    public var path: String
    /// The query's `name=value` pairs (percent-decoded; the last of a repeated name wins).
    public var query: [String: String]

    public init(method: String = "GET", path: String, query: [String: String] = [:]) {
        self.method = method
        self.path = path
        self.query = query
    }
}

/// A small HTTP/1.1 server for operational endpoints (istiod's 15014:
/// `/metrics`, `/ready`, `/debug/...`; ztunnel's 15020 metrics and 15000
/// admin): GET, HEAD and POST, one reply per request, computed by an async
/// route function.
public final class MonitoringServer: Sendable {
    public typealias Route = @Sendable (_ request: MonitoringRequest) async -> MonitoringReply

    private let channel: any Channel
    private let connections: ConnectionSet

    private init(channel: any Channel, connections: ConnectionSet) {
        self.channel = channel
        self.connections = connections
    }

    /// Binds `host:port` (port 0 picks a free one) and serves `route`.
    public static func start(host: String, port: Int, route: @escaping Route) async throws -> MonitoringServer {
        let connections = ConnectionSet()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                connections.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MonitoringHandler(route: route))
                }
            }
            .bind(host: host, port: port)
            .get()
        return MonitoringServer(channel: channel, connections: connections)
    }

    /// The bound port.
    public var port: Int { channel.localAddress?.port ?? 0 }

    /// Stops listening and closes the open (keep-alive) connections.
    public func close() async {
        try? await channel.close()
        for connection in connections.all() { try? await connection.close() }
    }
}

/// The accepted connections still open.
private final class ConnectionSet: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLockedValue { $0[id] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in _ = self?.channels.withLockedValue { $0.removeValue(forKey: id) } }
    }

    func all() -> [any Channel] { channels.withLockedValue { Array($0.values) } }
}

private final class MonitoringHandler: ChannelInboundHandler, Sendable {
    static func parseQuery(_ text: Substring) -> [String: String] {
        var query: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(halves[0]).removingPercentEncoding ?? String(halves[0])
            let value = halves.count > 1 ? (String(halves[1]).removingPercentEncoding ?? String(halves[1])) : ""
            query[name] = value
        }
        return query
    }

    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let route: MonitoringServer.Route

    init(route: @escaping MonitoringServer.Route) {
        self.route = route
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let loop = context.eventLoop
        let bound = NIOLoopBound(context, eventLoop: loop)
        let keepAlive = head.isKeepAlive
        let route = self.route
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts.first ?? "/")
        let query = parts.count > 1 ? Self.parseQuery(parts[1]) : [:]
        let method = head.method
        loop.makeFutureWithTask { () async -> MonitoringReply in
            guard method == .GET || method == .HEAD || method == .POST else { return MonitoringReply(status: .methodNotAllowed, body: "only GET, HEAD and POST\n") }
            return await route(MonitoringRequest(method: method.rawValue, path: path, query: query))
        }.whenSuccess { reply in
            let context = bound.value
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: reply.contentType)
            headers.add(name: "content-length", value: String(reply.body.utf8.count))
            if !keepAlive { headers.add(name: "connection", value: "close") }
            context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers))), promise: nil)
            if method != .HEAD {
                context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: reply.body)))), promise: nil)
            }
            let done = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
            if !keepAlive { done.whenComplete { _ in bound.value.close(promise: nil) } }
        }
    }
}
