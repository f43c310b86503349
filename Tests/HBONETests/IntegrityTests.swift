import Crypto
import NIOConcurrencyHelpers
import Foundation
import HBONE
import NIOCore
import NIOPosix
import Synchronization
import MeshTestSupport
import Testing

/// Hashes everything it receives; at the client's end of input answers "<bytes> <sha256 hex>" and closes.
final class HashingUpstreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var hasher = SHA256()
    private var count = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        count += bytes.readableBytes
        bytes.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "\(count) \(digest)")), promise: nil)
            context.close(mode: .output, promise: nil)
        }
    }
}

/// Sends a greeting and half-closes at once, then records what the client sends until it ends.
final class GreetThenListenHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let received: NIOLockedValueBox<String>
    let ended: NIOLockedValueBox<Bool>
    private var text = ""

    init(received: NIOLockedValueBox<String>, ended: NIOLockedValueBox<Bool>) {
        self.received = received
        self.ended = ended
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "greeting")), promise: nil)
        context.close(mode: .output, promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        text += String(buffer: unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            received.withLockedValue { $0 = text }
            ended.withLockedValue { $0 = true }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        received.withLockedValue { $0 = text }
        ended.withLockedValue { $0 = true }
    }
}

/// Records how a connection ended: "reset" (ECONNRESET), "eof" or "closed"; resets on "RESET".
final class ResetWatchingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let outcome: NIOLockedValueBox<[String]>
    init(outcome: NIOLockedValueBox<[String]>) { self.outcome = outcome }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let text = String(buffer: unwrapInboundIn(data))
        outcome.withLockedValue { $0.append("data:\(text)") }
        if text.contains("RESET") {
            let channel = context.channel
            (channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { outcome.withLockedValue { $0.append("eof") } }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let io = error as? IOError, io.errnoCode == ECONNRESET {
            outcome.withLockedValue { $0.append("reset") }
        } else {
            outcome.withLockedValue { $0.append("error:\(error)") }
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) { outcome.withLockedValue { $0.append("closed") } }
}

@Suite("HBONE byte integrity, half-close and reset", .serialized)
struct IntegrityTests {
    @Test("half-close: the client ends first and still receives the upstream's answer")
    func clientEndsFirst() async throws {
        let upstream = try await TCPUpstream { HashingUpstreamHandler() }
        let harness = try await HBONEHarness()
        let client = try harness.client()
        let answer = try await client.openStream(harness.request(to: upstream.address)).executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "abc"))
            outbound.finish()
            return String(buffer: try await readAll(inbound))
        }
        #expect(answer == "3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("half-close: the upstream ends first and still receives the client's data")
    func upstreamEndsFirst() async throws {
        let received = NIOLockedValueBox(""), ended = NIOLockedValueBox(false)
        let upstream = try await TCPUpstream { GreetThenListenHandler(received: received, ended: ended) }
        let harness = try await HBONEHarness()
        let client = try harness.client()
        let greeting = try await client.openStream(harness.request(to: upstream.address)).executeThenClose { inbound, outbound in
            let greeting = String(buffer: try await readAll(inbound))  // ends: the upstream half-closed
            try await outbound.write(ByteBuffer(string: "late data after your FIN"))
            outbound.finish()
            #expect(await eventually { ended.withLockedValue { $0 } })
            return greeting
        }
        #expect(greeting == "greeting")
        #expect(received.withLockedValue { $0 } == "late data after your FIN")
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("an upstream reset resets the client's stream")
    func upstreamReset() async throws {
        let outcome = NIOLockedValueBox<[String]>([])
        let upstream = try await TCPUpstream { ResetWatchingHandler(outcome: outcome) }
        let harness = try await HBONEHarness()
        let client = try harness.client()
        let stream = try await client.openStream(harness.request(to: upstream.address))
        await #expect(throws: HBONEError.streamReset(code: 8)) {
            try await stream.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: "RESET"))
                for try await _ in inbound {}
            }
        }
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("a client reset resets the upstream connection")
    func clientReset() async throws {
        let outcome = NIOLockedValueBox<[String]>([])
        let upstream = try await TCPUpstream { ResetWatchingHandler(outcome: outcome) }
        let harness = try await HBONEHarness()
        let client = try harness.client()
        // A raw stream channel: close() without a prior half-close resets the stream (RST_STREAM CANCEL).
        let channel = try await client.openChannel(harness.request(to: upstream.address)) { channel in
            channel.eventLoop.makeSucceededFuture(channel)
        }
        try await channel.writeAndFlush(ByteBuffer(string: "hello"))
        #expect(await eventually { outcome.withLockedValue { $0.contains("data:hello") } })
        try? await channel.close()  // completes with the CANCEL it caused
        #expect(await eventually { outcome.withLockedValue { $0.contains("closed") } })
        #expect(outcome.withLockedValue { $0 } == ["data:hello", "reset", "closed"])
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }
}

extension HBONEMemoryHeavyTests {
    @Suite("HBONE byte integrity (1 GiB)")
    struct IntegrityGiBTests {
        /// 1 GiB by default; `HBONE_INTEGRITY_BYTES` may lower it for quick local runs.
        static let integrityBytes = Int(ProcessInfo.processInfo.environment["HBONE_INTEGRITY_BYTES"] ?? "") ?? (1 << 30)

        @Test("1 GiB through one tunnel arrives with a matching SHA-256")
        func oneGiB() async throws {
            let upstream = try await TCPUpstream { HashingUpstreamHandler() }
            let harness = try await HBONEHarness()
            let client = try harness.client()
            let stream = try await client.openStream(harness.request(to: upstream.address))

            var chunk = ByteBuffer()
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<(1 << 20) / 8 { chunk.writeInteger(generator.next() as UInt64) }
            let total = Self.integrityBytes
            let answer = try await stream.executeThenClose { inbound, outbound in
                var hasher = SHA256()
                var sent = 0
                while sent < total {
                    let slice = chunk.getSlice(at: 0, length: min(chunk.readableBytes, total - sent))!
                    slice.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    try await outbound.write(slice)
                    sent += slice.readableBytes
                }
                outbound.finish()
                let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
                return (String(buffer: try await readAll(inbound)), digest)
            }
            #expect(answer.0 == "\(total) \(answer.1)")
            #expect(await eventually { harness.metrics.snapshot.closed.contains { $0.bytesToDestination == UInt64(total) } })
            await client.close()
            await harness.server.shutdown()
            await upstream.close()
        }
    }
}
