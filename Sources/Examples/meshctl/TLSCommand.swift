import ArgumentParser
import Foundation
import MeshIdentity
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

struct TLSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls",
        abstract: "Probe SPIFFE mTLS: a verifying echo server and a client.",
        subcommands: [Serve.self, Connect.self]
    )

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept mTLS connections, print each verified peer SPIFFE ID, greet it and echo its bytes."
        )

        @Option(help: "Directory with svid.pem, svid.key and bundle.json.") var svid: String
        @Option(help: "Address to listen on.") var listen: String = "127.0.0.1:15443"
        @Option(help: "Allowed client SPIFFE ID (repeatable; default: any ID of our trust domain).") var allow: [String] = []
        @Option(help: "Exit after this many connections have closed (default: run until interrupted).") var connections: Int?

        func run() async throws {
            try await reportingErrors {
                let identity = try loadSVIDDirectory(svid)
                let authorizer = try peerAuthorizer(allow, orMemberOf: identity.svid.id.trustDomain)
                let tls = MeshTLS(
                    svids: SVIDSource(svid: identity.svid),
                    bundles: TrustBundleStore(identity.bundles),
                    configuration: MeshTLSConfiguration(serverAuthorizer: authorizer)
                )
                let (host, port) = try hostAndPort(listen)
                let done = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: Void.self)
                let counter = ConnectionCounter(limit: connections, done: done)
                let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandlers(tls.makeServerHandlers())
                            try channel.pipeline.syncOperations.addHandler(GreetingEchoHandler(counter: counter))
                        }
                    }
                    .bind(host: host, port: port)
                    .get()
                say("listening on \(server.localAddress.map { "\($0)" } ?? listen) as \(identity.svid.id), allowing \(authorizer)")
                let signals = installSignalHandlers(done)
                try await done.futureResult.get()
                signals.forEach { $0.cancel() }
                try await server.close()
                say("server stopped")
            }
        }
    }

    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Connect with mTLS, verify the server's SPIFFE ID, send a message and print the replies."
        )

        @Option(help: "Directory with svid.pem, svid.key and bundle.json.") var svid: String
        @Option(help: "Expected server SPIFFE ID (repeatable; default: any ID of our trust domain).") var expect: [String] = []
        @Option(help: "Message to send.") var message: String = "ping"
        @Argument(help: "Server address host:port.") var address: String

        func run() async throws {
            try await reportingErrors {
                let identity = try loadSVIDDirectory(svid)
                let authorizer = try peerAuthorizer(expect, orMemberOf: identity.svid.id.trustDomain)
                let tls = MeshTLS(svids: SVIDSource(svid: identity.svid), bundles: TrustBundleStore(identity.bundles))
                let (host, port) = try hostAndPort(address)
                let reader = LineReader()
                let outcome = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: VerifiedPeer.self)
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(10))
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try tls.addClientHandlers(to: channel, authorizer: authorizer).cascade(to: outcome)
                            try channel.pipeline.syncOperations.addHandler(reader)
                        }
                    }
                    .connect(host: host, port: port)
                    .get()
                let peer: VerifiedPeer
                do {
                    peer = try await outcome.futureResult.get()
                } catch {
                    throw CommandFailure(message: "handshake with \(address) failed: \(error)", code: 1)
                }
                let version = try await channel.nioSSL_tlsVersion().get().map { "\($0)" } ?? "?"
                say("connected to \(address) as \(identity.svid.id); server verified as \(peer.peerID) (\(version), ALPN \(peer.negotiatedProtocol ?? "none"))")
                let greeting = try await reader.nextLine(on: channel)
                say("server says: \(greeting)")
                try await channel.writeAndFlush(ByteBuffer(string: message + "\n"))
                let echo = try await reader.nextLine(on: channel)
                say("echo: \(echo)")
                try await channel.close()
            }
        }
    }
}

/// An SVID directory written by `meshctl svid issue`.
func loadSVIDDirectory(_ directory: String) throws -> (svid: X509SVID, bundles: TrustBundleSet) {
    let svid = try X509SVID(chainFile: directory + "/svid.pem", privateKeyFile: directory + "/svid.key")
    let bundle = try TrustBundleCoding.read(file: directory + "/bundle.json", trustDomain: svid.id.trustDomain)
    return (svid, TrustBundleSet([bundle]))
}

/// The peers named by repeated `--allow`/`--expect` options, or any ID of `trustDomain` when none is named.
func peerAuthorizer(_ ids: [String], orMemberOf trustDomain: TrustDomain) throws -> SPIFFEAuthorizer {
    ids.isEmpty ? .memberOf(trustDomain) : .exactly(Set(try ids.map { try SPIFFEID($0) }))
}

func hostAndPort(_ address: String) throws -> (String, Int) {
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port) else {
        throw CommandFailure(message: "error: \(address) is not host:port", code: 2)
    }
    return (String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
}

func installSignalHandlers(_ done: EventLoopPromise<Void>) -> [any DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { signalNumber in
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler { done.succeed() }
        source.resume()
        return source
    }
}

/// Counts closed connections and completes `done` at the limit.
final class ConnectionCounter: Sendable {
    private let limit: Int?
    private let done: EventLoopPromise<Void>
    private let closed = Atomic<Int>(0)

    init(limit: Int?, done: EventLoopPromise<Void>) {
        self.limit = limit
        self.done = done
    }

    func connectionClosed() {
        let count = closed.add(1, ordering: .relaxed).newValue
        if let limit, count >= limit { done.succeed() }
    }
}

/// Greets a verified peer with its SPIFFE ID, then echoes.
final class GreetingEchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let counter: ConnectionCounter

    init(counter: ConnectionCounter) { self.counter = counter }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let verified = event as? SPIFFEPeerVerifiedEvent {
            say("accepted \(context.remoteAddress.map { "\($0)" } ?? "?") verified peer \(verified.peerID)")
            context.writeAndFlush(NIOAny(ByteBuffer(string: "hello \(verified.peerID)\n")), promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        counter.connectionClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        say("connection from \(context.remoteAddress.map { "\($0)" } ?? "?") failed: \(error)")
        context.close(promise: nil)
    }
}

/// Reads newline-terminated lines from a channel.
final class LineReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var buffer = ""
    private var waiter: EventLoopPromise<String>?
    private var closed = false
    private var failure: (any Error)?

    struct ConnectionClosed: Error, CustomStringConvertible {
        var reason: (any Error)?
        var description: String {
            reason.map { "the server closed the connection: \($0)" } ?? "the server closed the connection"
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer += bytes.readString(length: bytes.readableBytes) ?? ""
        deliver()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        deliver()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failure = error
        context.close(promise: nil)
    }

    private func deliver() {
        guard let waiter else { return }
        if let newline = buffer.firstIndex(of: "\n") {
            let line = String(buffer[..<newline])
            buffer = String(buffer[buffer.index(after: newline)...])
            self.waiter = nil
            waiter.succeed(line)
        } else if closed {
            self.waiter = nil
            waiter.fail(ConnectionClosed(reason: failure))
        }
    }

    func nextLine(on channel: any Channel) async throws -> String {
        try await channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: String.self)
            self.waiter = promise
            self.deliver()
            return promise.futureResult
        }.get()
    }
}

/// Prints a line to stdout without buffering, so logs interleave correctly when piped.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
