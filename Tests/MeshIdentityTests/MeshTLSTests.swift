import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing
@testable import MeshIdentity
import MeshTestSupport

/// A Swift mTLS echo server on 127.0.0.1 with port 0, recording verified peer IDs.
final class EchoServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    init(tls: MeshTLS, authorizer: SPIFFEAuthorizer? = nil) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(tls.makeServerHandlers(authorizer: authorizer))
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    func close() async throws { try await channel.close() }
}

final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let verified = event as? SPIFFEPeerVerifiedEvent {
            // Greet with the verified ID so the client can see what the server saw.
            context.writeAndFlush(NIOAny(ByteBuffer(string: "hello \(verified.peerID)\n")), promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Collects what arrives on a client connection.
final class Collector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var buffer = ""
    private var waiters: [(String, EventLoopPromise<String>)] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer += bytes.readString(length: bytes.readableBytes) ?? ""
        check()
    }

    struct Closed: Error {}
    private var closed = false

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        check()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func check() {
        waiters.removeAll { needle, promise in
            if buffer.contains(needle) {
                promise.succeed(buffer)
                return true
            }
            if closed {
                promise.fail(Closed())
                return true
            }
            return false
        }
    }

    func wait(for needle: String, on loop: any EventLoop) -> EventLoopFuture<String> {
        loop.submit {
            let promise = loop.makePromise(of: String.self)
            self.waiters.append((needle, promise))
            self.check()
            return promise.futureResult
        }.flatMap { $0 }
    }
}

/// A client connection and the outcome of its handshake.
struct ClientConnection {
    let channel: any Channel
    let collector: Collector
    let verified: EventLoopFuture<VerifiedPeer>

    var peerID: SPIFFEID { get async throws { try await verified.get().peerID } }
}

func connect(port: Int, tls: MeshTLS, authorizer: SPIFFEAuthorizer) async throws -> ClientConnection {
    let collector = Collector()
    let outcome = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: VerifiedPeer.self)
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try tls.addClientHandlers(to: channel, authorizer: authorizer).cascade(to: outcome)
                try channel.pipeline.syncOperations.addHandler(collector)
            }
        }
        .connect(host: "127.0.0.1", port: port)
        .get()
    return ClientConnection(channel: channel, collector: collector, verified: outcome.futureResult)
}

@Suite("SPIFFE mTLS over real sockets")
struct MeshTLSTests {
    @Test("handshake succeeds and both sides see the verified peer ID")
    func handshake() async throws {
        let pki = try ServerClientPKI()
        let server = try await EchoServer(tls: pki.tls(pki.serverID, authorizer: .exactly(pki.clientID)))
        let connection = try await connect(port: server.port, tls: pki.tls(pki.clientID), authorizer: .exactly(pki.serverID))
        let (client, collector) = (connection.channel, connection.collector)
        #expect(try await connection.peerID == pki.serverID)
        #expect(try await client.spiffePeerID() == pki.serverID)  // the pipeline lookup, while open
        #expect(try await connection.verified.get().negotiatedProtocol == "h2")
        let greeting = try await collector.wait(for: "\n", on: client.eventLoop).get()
        #expect(greeting == "hello \(pki.clientID)\n")
        #expect(try await client.nioSSL_tlsVersion().get() == .tlsv13)
        let alpn = try await client.pipeline.handler(type: NIOSSLHandler.self).map { $0.tlsVersion }.get()
        #expect(alpn == .tlsv13)
        try await client.close()
        try await server.close()
    }

    @Test("a client whose ID the server does not authorize is refused")
    func unauthorizedClient() async throws {
        let pki = try ServerClientPKI()
        let server = try await EchoServer(tls: pki.tls(pki.serverID, authorizer: .exactly(pki.clientID)))
        let intruder = try SPIFFEID("spiffe://example.org/ns/default/sa/intruder")
        let connection = try await connect(port: server.port, tls: pki.tls(intruder), authorizer: .exactly(pki.serverID))
        let (client, collector) = (connection.channel, connection.collector)
        // TLS 1.3: the client finishes first; the server's refusal arrives as an alert and a close.
        await #expect(throws: (any Error).self) {
            _ = try await collector.wait(for: "hello", on: client.eventLoop).get()
        }
        try? await client.closeFuture.get()
        try await server.close()
    }

    @Test("a server that is not the expected identity is refused by the client")
    func wrongServer() async throws {
        let pki = try ServerClientPKI()
        let server = try await EchoServer(tls: pki.tls(pki.serverID))
        let client = try await connect(port: server.port, tls: pki.tls(pki.clientID), authorizer: .exactly(try SPIFFEID("spiffe://example.org/ns/default/sa/other")))
        await #expect(throws: SPIFFEAuthorizationError.self) { try await client.peerID }
        try? await client.channel.closeFuture.get()
        try await server.close()
    }

    @Test("a peer from an untrusted CA is refused with the validation reason")
    func untrustedCA() async throws {
        let pki = try ServerClientPKI()
        let stranger = try ServerClientPKI()
        let server = try await EchoServer(tls: pki.tls(pki.serverID))
        let client = try await connect(port: server.port, tls: pki.tls(pki.clientID), authorizer: .anyVerified)
        #expect(try await client.peerID == pki.serverID)
        try await client.channel.close()
        // A client trusting only the stranger's CA refuses our server.
        let client2 = try await connect(port: server.port, tls: stranger.tls(stranger.clientID), authorizer: .anyVerified)
        await #expect(throws: X509SVIDValidationError.self) { try await client2.peerID }
        try? await client2.channel.closeFuture.get()
        try await server.close()
    }

    @Test("after rotation a new connection presents the new SVID while the old one stays up")
    func rotation() async throws {
        let pki = try ServerClientPKI()
        let clock = ManualClock(now: Date())
        let provider = ScriptedProvider(authority: pki.ca, id: pki.serverID, clock: clock, ttl: 3600)
        let source = SVIDSource(provider: provider, clock: clock)
        let rotation = Task { try await source.run() }
        defer { rotation.cancel() }
        let first = try await source.firstSVID()
        let serverTLS = MeshTLS(svids: source, bundles: pki.bundles, clock: clock)
        let server = try await EchoServer(tls: serverTLS)

        let oldConnection = try await connect(port: server.port, tls: pki.tls(pki.clientID, clock: clock), authorizer: .exactly(pki.serverID))
        let (old, oldCollector) = (oldConnection.channel, oldConnection.collector)
        _ = try await oldCollector.wait(for: "hello", on: old.eventLoop).get()
        let oldSerial = try await old.nioSSL_peerCertificate().get().map { try $0.toDERBytes() }
        #expect(oldSerial == (try CertificateCoding.der(first.leaf)))

        var updates = source.updates().makeAsyncIterator()
        _ = await updates.next()
        await clock.waitForSleepers()
        clock.advance(to: first.renewAt)
        let second = try #require(await updates.next())
        #expect(second != first)

        let newConnection = try await connect(port: server.port, tls: pki.tls(pki.clientID, clock: clock), authorizer: .exactly(pki.serverID))
        let (new, newCollector) = (newConnection.channel, newConnection.collector)
        _ = try await newCollector.wait(for: "hello", on: new.eventLoop).get()
        let newLeaf = try await new.nioSSL_peerCertificate().get().map { try $0.toDERBytes() }
        #expect(newLeaf == (try CertificateCoding.der(second.leaf)))

        // The old connection still carries traffic.
        try await old.writeAndFlush(ByteBuffer(string: "still-here\n")).get()
        let echoed = try await oldCollector.wait(for: "still-here", on: old.eventLoop).get()
        #expect(echoed.contains("still-here"))
        try await old.close()
        try await new.close()
        try await server.close()
    }

    @Test("without a valid SVID no handler is built")
    func noSVID() throws {
        let pki = try ServerClientPKI()
        let provider = ScriptedProvider(authority: pki.ca, id: pki.serverID, clock: ManualClock(), ttl: 60)
        let tls = MeshTLS(svids: SVIDSource(provider: provider), bundles: pki.bundles)
        #expect(throws: SVIDSourceError.noValidSVID) { try tls.makeServerHandlers() }
    }
}
