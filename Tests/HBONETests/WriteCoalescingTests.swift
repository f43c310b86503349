import Foundation
import NIOConcurrencyHelpers
@testable import HBONE
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

/// Forwards bytes one way to `partner` and keeps a copy of everything that passed.
final class RecordingRelayHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let partner: any Channel
    let log: NIOLockedValueBox<[UInt8]>
    init(partner: any Channel, log: NIOLockedValueBox<[UInt8]>) {
        self.partner = partner
        self.log = log
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        log.withLockedValue { $0.append(contentsOf: bytes.readableBytesView) }
        partner.writeAndFlush(bytes, promise: nil)
    }
    func channelInactive(context: ChannelHandlerContext) { partner.close(promise: nil) }
}

/// A TCP relay in front of `target` that records both directions.
func recordingRelay(to target: SocketAddress, toTarget: NIOLockedValueBox<[UInt8]>, fromTarget: NIOLockedValueBox<[UInt8]>) async throws -> any Channel {
    try await tcpRelay(to: target) { partner, towardTarget in RecordingRelayHandler(partner: partner, log: towardTarget ? toTarget : fromTarget) }
}

/// The TLS records (content type, length) in a byte stream that starts at a record boundary.
func tlsRecords(_ bytes: [UInt8]) -> [(type: UInt8, length: Int)] {
    var records: [(type: UInt8, length: Int)] = []
    var index = 0
    while index + 5 <= bytes.count {
        let length = Int(bytes[index + 3]) << 8 | Int(bytes[index + 4])
        records.append((bytes[index], length))
        index += 5 + length
    }
    return records
}

@Suite("HBONE write coalescing")
struct WriteCoalescingTests {
    @Test("small writes between flushes leave as one buffer; large ones pass through in order; promises complete")
    func gathersUntilFlush() throws {
        let channel = EmbeddedChannel(handler: WriteCoalescingHandler(passThroughBytes: 16))
        let first = channel.eventLoop.makePromise(of: Void.self)
        let second = channel.eventLoop.makePromise(of: Void.self)
        channel.write(ByteBuffer(string: "header-9b"), promise: first)
        channel.write(ByteBuffer(string: "x"), promise: second)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing leaves before the flush")
        channel.flush()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "header-9bx"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        let completed = NIOLockedValueBox(0)
        first.futureResult.whenSuccess { completed.withLockedValue { $0 += 1 } }
        second.futureResult.whenSuccess { completed.withLockedValue { $0 += 1 } }
        #expect(completed.withLockedValue { $0 } == 2)

        // A large write sends what was gathered before it, then itself, unchanged.
        let large = ByteBuffer(repeating: 7, count: 64)
        channel.write(ByteBuffer(string: "hdr"), promise: nil)
        channel.write(large, promise: nil)
        channel.write(ByteBuffer(string: "tail"), promise: nil)
        channel.flush()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "hdr"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == large)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "tail"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)

        // An empty write with a promise still completes it on the flush.
        let empty = channel.eventLoop.makePromise(of: Void.self)
        let emptyDone = NIOLockedValueBox(false)
        empty.futureResult.whenSuccess { emptyDone.withLockedValue { $0 = true } }
        channel.write(ByteBuffer(), promise: empty)
        channel.flush()
        #expect(emptyDone.withLockedValue { $0 })
        _ = try channel.readOutbound(as: ByteBuffer.self)
        #expect(try channel.finish().isClean)
    }

    @Test("a failed write fails every promise it gathered")
    func failurePropagates() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(FailingWrites())
        try channel.pipeline.syncOperations.addHandler(WriteCoalescingHandler())
        let promises = (0..<3).map { _ in channel.eventLoop.makePromise(of: Void.self) }
        let failures = NIOLockedValueBox(0)
        for promise in promises {
            promise.futureResult.whenFailure { _ in failures.withLockedValue { $0 += 1 } }
            channel.write(ByteBuffer(string: "b"), promise: promise)
        }
        channel.flush()
        #expect(failures.withLockedValue { $0 } == 3)
        _ = try? channel.finish()
    }

    @Test("a 1-byte message through a tunnel is one TLS record each way (frame header and payload sealed together)")
    func oneRecordPerMessage() async throws {
        let upstream = try await TCPUpstream.echo()
        // No keepalive PINGs: on a slow run (a sanitizer build) one would land in the measured window.
        let harness = try await HBONEHarness(configuration: TestConfig.server { $0.keepalive = nil })
        let toServer = NIOLockedValueBox<[UInt8]>([]), toClient = NIOLockedValueBox<[UInt8]>([])
        let relay = try await recordingRelay(to: harness.address, toTarget: toServer, fromTarget: toClient)
        let client = try harness.client(TestConfig.client { $0.keepalive = nil })
        var request = harness.request(to: upstream.address)
        request.peer = relay.localAddress!
        let stream = try await client.openStream(request)
        try await stream.executeThenClose { inbound, outbound in
            var reads = inbound.makeAsyncIterator()
            // Let the connection's opening frames (SETTINGS, their ACKs, WINDOW_UPDATE) settle.
            try await outbound.write(ByteBuffer(string: "warm"))
            _ = try await reads.next()
            try await Task.sleep(for: .milliseconds(300))
            let before = (tlsRecords(toServer.withLockedValue { $0 }).count, tlsRecords(toClient.withLockedValue { $0 }).count)
            try await outbound.write(ByteBuffer(string: "x"))
            let echoed = try await reads.next()
            #expect(echoed == ByteBuffer(string: "x"))
            try await Task.sleep(for: .milliseconds(300))
            let sent = Array(tlsRecords(toServer.withLockedValue { $0 }).dropFirst(before.0))
            let received = Array(tlsRecords(toClient.withLockedValue { $0 }).dropFirst(before.1))
            // TLS 1.3 application data: 9-byte frame header + 1 byte + content type + 16-byte tag.
            #expect(sent.map(\.type) == [23] && sent.map(\.length) == [27], "client → server records: \(sent)")
            #expect(received.map(\.type) == [23] && received.map(\.length) == [27], "server → client records: \(received)")
            outbound.finish()
        }
        await client.close()
        try await relay.close()
        await harness.server.shutdown()
        await upstream.close()
    }
}

/// Fails every write that reaches it.
private final class FailingWrites: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    struct Refused: Error {}
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.fail(Refused())
    }
}
