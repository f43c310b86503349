import Crypto
import Foundation
import HBONE
import MeshIdentity
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import Testing
import MeshTestSupport

/// Server and client timers shortened so tests never wait for production values.
enum TestConfig {
    static func server(_ change: (inout HBONEServerConfiguration) -> Void = { _ in }) -> HBONEServerConfiguration {
        var configuration = HBONEServerConfiguration(host: "127.0.0.1", port: 0, upstreamConnectTimeout: .seconds(5), drainDeadline: .seconds(5))
        change(&configuration)
        return configuration
    }

    static func client(_ change: (inout HBONEClientConfiguration) -> Void = { _ in }) -> HBONEClientConfiguration {
        var configuration = HBONEClientConfiguration(connectTimeout: .seconds(10))
        change(&configuration)
        return configuration
    }
}

/// Records what the inbound handler was asked, and answers from closures.
final class RecordingInboundHandler: HBONEInboundHandler {
    let requests = NIOLockedValueBox<[HBONEInboundRequest]>([])
    let resolver: @Sendable (HBONEInboundRequest) -> HBONEUpstream?
    let decision: @Sendable (HBONEInboundRequest) -> HBONEAuthorization

    init(
        resolve: @escaping @Sendable (HBONEInboundRequest) -> HBONEUpstream? = { $0.authority.socketAddress.map { HBONEUpstream(address: $0) } },
        authorize: @escaping @Sendable (HBONEInboundRequest) -> HBONEAuthorization = { _ in .allow }
    ) {
        self.resolver = resolve
        self.decision = authorize
    }

    func resolve(_ request: HBONEInboundRequest) async -> HBONEUpstream? {
        requests.withLockedValue { $0.append(request) }
        return resolver(request)
    }

    func authorize(_ request: HBONEInboundRequest, upstream: HBONEUpstream) async -> HBONEAuthorization {
        decision(request)
    }

    var last: HBONEInboundRequest? { requests.withLockedValue { $0.last } }
}

/// Counts tunnel events.
final class CountingMetrics: HBONEMetricsObserver {
    struct Snapshot {
        var opened = 0
        var closed: [HBONETunnelSummary] = []
        var openedInfo: [HBONETunnelInfo] = []
        var closedInfo: [HBONETunnelInfo] = []
        var handshakeFailures: [String] = []
    }
    let state = NIOLockedValueBox(Snapshot())
    func tunnelOpened(_ info: HBONETunnelInfo) { state.withLockedValue { $0.opened += 1; $0.openedInfo.append(info) } }
    func tunnelClosed(_ info: HBONETunnelInfo, summary: HBONETunnelSummary) { state.withLockedValue { $0.closed.append(summary); $0.closedInfo.append(info) } }
    func handshakeFailed(peer: SocketAddress?, local: SocketAddress?, reason: String) { state.withLockedValue { $0.handshakeFailures.append(reason) } }
    var snapshot: Snapshot { state.withLockedValue { $0 } }
}

/// A plain TCP upstream on 127.0.0.1:0 whose behaviour per connection is a handler factory.
final class TCPUpstream: Sendable {
    let channel: any Channel
    var address: SocketAddress { channel.localAddress! }
    var port: Int { channel.localAddress!.port! }

    init(_ makeHandler: @escaping @Sendable () -> any ChannelHandler & Sendable) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    static func echo() async throws -> TCPUpstream { try await TCPUpstream { EchoUpstreamHandler() } }

    func close() async { try? await channel.close() }
}

/// Echoes bytes; when the client half-closes, half-closes back after echoing.
final class EchoUpstreamHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // NIO escalates close(mode: .output) on a channel whose input is shut to a full close,
            // which drops unwritten echo: half-close only once everything before it is written.
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(mode: .output, promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// A running HBONE server with its PKI.
struct HBONEHarness {
    let pki: ServerClientPKI
    let server: HBONEServer
    let address: SocketAddress
    let handler: RecordingInboundHandler
    let metrics: CountingMetrics

    init(pki: ServerClientPKI = try! ServerClientPKI(), handler: RecordingInboundHandler = RecordingInboundHandler(), configuration: HBONEServerConfiguration = TestConfig.server()) async throws {
        self.pki = pki
        self.handler = handler
        self.metrics = CountingMetrics()
        server = HBONEServer(tls: try pki.tls(pki.serverID), handler: handler, configuration: configuration, metrics: metrics)
        address = try await server.start()
    }

    func client(_ configuration: HBONEClientConfiguration = TestConfig.client(), id: SPIFFEID? = nil) throws -> HBONEClient {
        HBONEClient(tls: try pki.tls(id ?? pki.clientID), configuration: configuration)
    }

    func request(to upstream: SocketAddress, source: String? = nil) -> HBONEConnectRequest {
        HBONEConnectRequest(
            authority: try! HBONEAuthority(upstream),
            peer: address,
            expectedIdentities: [pki.serverID],
            forwarding: HBONEForwarding(source: source ?? "127.0.0.1:40000", baggage: "k8s.namespace.name=default", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        )
    }
}

/// Reads everything until the stream ends.
func readAll(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) async throws -> ByteBuffer {
    var all = ByteBuffer()
    for try await var chunk in inbound { all.writeBuffer(&chunk) }
    return all
}

/// Sockets on `port` (local or remote) in /proc/net/tcp that are listening, established
/// or waiting for us to close (CLOSE_WAIT): what a leaked file descriptor would keep alive.
func liveTCPConnections(port: Int) -> Int {
    guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return -1 }
    let hex = String(format: "%04X", port)
    return table.split(separator: "\n").dropFirst().filter { line in
        let fields = line.split(separator: " ")
        guard fields.count > 3 else { return false }
        let local = fields[1].split(separator: ":").last, remote = fields[2].split(separator: ":").last
        let state = fields[3]
        return (local == Substring(hex) || remote == Substring(hex)) && ["01", "08", "0A"].contains(state)
    }.count
}

/// A plain Python TCP client (not our code): connects to 127.0.0.1:`port`, sends
/// `message`, half-closes, and prints everything it reads back.
func sendThenReadToEnd(port: Int, _ message: String) async throws -> Interop.Output {
    try await Interop.run("/usr/bin/env", ["python3", "-c", """
        import socket
        s = socket.create_connection(("127.0.0.1", \(port))); s.settimeout(20)
        s.sendall(b"\(message)"); s.shutdown(socket.SHUT_WR)
        data = b""
        while (chunk := s.recv(65536)): data += chunk
        print(data.decode())
        """])
}

/// Tunnels a local TCP connection with `client.tunnel` (the spliced, fast-data-path way ztunnel
/// uses), writes `bytes` pseudo-random bytes into it while reading what comes back, half-closes,
/// and returns the count and SHA-256 of each direction (streamed: memory stays small, so tests
/// that measure the process's RSS are not disturbed).
func spliceBulk(client: HBONEClient, request: HBONEConnectRequest, bytes: Int) async throws -> (sent: StreamDigest, received: StreamDigest) {
    let tunnelErrors = NIOLockedValueBox<[String]>([])
    let listener = try await spliceListener { channel in
        do { try await client.tunnel(request, splicingWith: channel) } catch { tunnelErrors.withLockedValue { $0.append("\(error)") } }
    }
    let socket = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelOption(.allowRemoteHalfClosure, value: true)
        .connect(to: listener.localAddress!) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            }
        }
    let result = try await socket.executeThenClose { inbound, outbound in
        try await withThrowingTaskGroup(of: (sent: Bool, digest: StreamDigest).self) { group in
            group.addTask {
                var generator = SeededGenerator(seed: 42)
                var sent = StreamDigest()
                while sent.count < bytes {
                    var chunk = ByteBuffer()
                    for _ in 0..<(min(256 << 10, bytes - sent.count) / 8) { chunk.writeInteger(generator.next() as UInt64) }
                    sent.add(chunk)
                    try await outbound.write(chunk)
                }
                outbound.finish()
                return (true, sent)
            }
            group.addTask {
                var received = StreamDigest()
                for try await chunk in inbound { received.add(chunk) }
                return (false, received)
            }
            var sent = StreamDigest(), received = StreamDigest()
            for try await result in group {
                if result.sent { sent = result.digest } else { received = result.digest }
            }
            return (sent, received)
        }
    }
    try await listener.close()
    #expect(tunnelErrors.withLockedValue { $0 }.isEmpty, "\(tunnelErrors.withLockedValue { $0 })")
    return result
}

/// A local listener whose accepted sockets (half-closable, with an ``HBONEHoldingHandler``
/// keeping early bytes) are handed to `splice`, as a SOCKS5 or redirect listener does.
func spliceListener(_ splice: @escaping @Sendable (any Channel) async -> Void) async throws -> any Channel {
    try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelOption(.allowRemoteHalfClosure, value: true)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(HBONEHoldingHandler())
                Task { await splice(channel) }
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
}

/// A TCP relay in front of `target`; `makeHandler` gets the partner and whether it relays toward the target.
func tcpRelay(to target: SocketAddress, _ makeHandler: @escaping @Sendable (_ partner: any Channel, _ towardTarget: Bool) -> any ChannelHandler & Sendable) async throws -> any Channel {
    try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { inbound in
            ClientBootstrap(group: inbound.eventLoop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { outbound in
                    outbound.eventLoop.makeCompletedFuture {
                        try outbound.pipeline.syncOperations.addHandler(makeHandler(inbound, false))
                    }
                }
                .connect(to: target)
                .flatMapThrowing { outbound in
                    try inbound.pipeline.syncOperations.addHandler(makeHandler(outbound, true))
                }
        }
        .bind(host: "127.0.0.1", port: 0).get()
}

/// The byte count and SHA-256 of a stream of bytes.
struct StreamDigest: Sendable, Equatable {
    private var hasher = SHA256()
    private(set) var count = 0

    mutating func add(_ bytes: ByteBuffer) {
        count += bytes.readableBytes
        bytes.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
    }

    var hex: String { hasher.finalize().map { String(format: "%02x", $0) }.joined() }

    static func == (a: StreamDigest, b: StreamDigest) -> Bool { a.count == b.count && a.hex == b.hex }
}
