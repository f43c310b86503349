import Foundation
import NIOConcurrencyHelpers
@testable import HBONE
import MeshTestSupport
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Testing

/// Frames written by hand, as a peer would send them.
enum RawFrame {
    static func header(length: Int, type: UInt8, flags: UInt8 = 0, stream: Int) -> [UInt8] {
        [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags,
         UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
    }
    static func data(stream: Int, _ payload: [UInt8], padding: Int? = nil, end: Bool = false) -> [UInt8] {
        guard let padding else { return header(length: payload.count, type: 0, flags: end ? 1 : 0, stream: stream) + payload }
        return header(length: payload.count + padding + 1, type: 0, flags: 0x8 | (end ? 1 : 0), stream: stream)
            + [UInt8(padding)] + payload + [UInt8](repeating: 0, count: padding)
    }
    static func windowUpdate(stream: Int, _ increment: UInt32) -> [UInt8] {
        header(length: 4, type: 8, stream: stream) + withUnsafeBytes(of: increment.bigEndian, Array.init)
    }
    static func settings(_ values: [(UInt16, UInt32)]) -> [UInt8] {
        header(length: values.count * 6, type: 4, stream: 0) + values.flatMap { withUnsafeBytes(of: $0.0.bigEndian, Array.init) + withUnsafeBytes(of: $0.1.bigEndian, Array.init) }
    }
    static func ping() -> [UInt8] { header(length: 8, type: 6, stream: 0) + [UInt8](repeating: 1, count: 8) }
}

/// An HBONEDataPath on an EmbeddedChannel with one registered stream whose codec lives on its own EmbeddedChannel.
struct DataPathHarness {
    let connection = EmbeddedChannel()
    let stream = EmbeddedChannel()
    let path: HBONEDataPath
    let codec = HBONEStreamDataCodec()
    let registered: HBONEDataPath.Stream

    init(settings: HBONEHTTP2Settings = HBONEHTTP2Settings(), streamID: Int = 1, role: HBONEDataPath.Role = .client) throws {
        path = HBONEDataPath(role: role, settings: settings)
        try connection.pipeline.syncOperations.addHandler(path)
        // Active, as a connected socket is (so that a close is visible as !isActive).
        try connection.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 15008)).wait()
        try stream.pipeline.syncOperations.addHandler(codec)
        if role == .server {
            try connection.writeInbound(ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
            _ = try connection.readInbound(as: ByteBuffer.self)
        }
        registered = try #require(path.register(codec, streamID: streamID))
    }

    /// Closes both channels and runs their event loops, so their handlers are removed: an
    /// EmbeddedChannel's pipeline and handlers hold each other until then (also when a test's
    /// data path already closed the connection, whose handler removal is still scheduled).
    func finish() {
        _ = try? connection.finish(acceptAlreadyClosed: true)
        _ = try? stream.finish(acceptAlreadyClosed: true)
    }

    /// Feeds `bytes` to the data path `chunk` bytes at a time, as the network might split them.
    func feed(_ bytes: [UInt8], chunk: Int = .max) throws {
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + chunk)
            try connection.writeInbound(ByteBuffer(bytes: bytes[index..<end]))
            index = end
        }
        connection.pipeline.fireChannelReadComplete()
    }

    /// Everything the data path passed on to NIOHTTP2.
    func forwarded() throws -> [UInt8] {
        var all: [UInt8] = []
        while let buffer = try connection.readInbound(as: ByteBuffer.self) { all += buffer.readableBytesView }
        return all
    }

    /// Everything delivered to the stream.
    func delivered() throws -> [UInt8] {
        var all: [UInt8] = []
        while let buffer = try stream.readInbound(as: ByteBuffer.self) { all += buffer.readableBytesView }
        return all
    }

    /// Everything written to the network.
    func written() throws -> [UInt8] {
        var all: [UInt8] = []
        while let data = try connection.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { all += buffer.readableBytesView }
        }
        return all
    }
}

@Suite("HBONE fast data path")
struct DataPathTests {
    @Test("DATA for a registered stream reaches it without padding; every other frame passes on byte for byte, however the reads split them", arguments: [1, 2, 5, 9, 10, 4096])
    func routing(chunk: Int) throws {
        let harness = try DataPathHarness()
        defer { harness.finish() }
        let payload = Array("fast path bytes".utf8)
        let other = RawFrame.data(stream: 3, Array("not registered".utf8))
        let last = RawFrame.data(stream: 1, Array("last".utf8), end: true)
        let passed = RawFrame.settings([(0x4, 1000)]) + RawFrame.ping() + other + RawFrame.windowUpdate(stream: 0, 0)
        try harness.feed(
            RawFrame.settings([(0x4, 1000)]) + RawFrame.data(stream: 1, Array(payload[0..<4]), padding: 6) + RawFrame.ping()
                + other + RawFrame.data(stream: 1, Array(payload[4...])) + RawFrame.windowUpdate(stream: 0, 0) + last,
            chunk: chunk
        )
        #expect(try harness.delivered() == payload)
        #expect(try harness.forwarded() == passed + last, "SETTINGS, PING, DATA of other streams, a zero WINDOW_UPDATE (for NIOHTTP2 to refuse) and END_STREAM go to NIOHTTP2")
        // DATA after END_STREAM no longer takes the fast path: NIOHTTP2 answers it as a stream error.
        try harness.feed(RawFrame.data(stream: 1, [1, 2, 3]))
        #expect(try harness.delivered().isEmpty)
        #expect(try harness.forwarded() == RawFrame.data(stream: 1, [1, 2, 3]))
    }

    @Test("sends within the peer's stream and connection windows and frame size, queues the rest and reports the stream unwritable until WINDOW_UPDATE")
    func sendWindows() throws {
        let harness = try DataPathHarness()
        defer { harness.finish() }
        let writability = NIOLockedValueBox<[Bool]>([])
        try harness.stream.pipeline.syncOperations.addHandler(WritabilityRecorder(events: writability))
        try harness.feed(RawFrame.settings([(0x4, 10)]))
        _ = try harness.forwarded()
        #expect(try harness.written() == RawFrame.windowUpdate(stream: 0, UInt32((16 << 20) - 65_535)), "the connection window is raised to its configured size")
        harness.path.send(harness.registered, ByteBuffer(bytes: Array(0..<25)))
        harness.path.flush()
        #expect(try harness.written() == RawFrame.data(stream: 1, Array(0..<10)))
        #expect(writability.withLockedValue { $0 } == [false])
        try harness.feed(RawFrame.windowUpdate(stream: 1, 100))
        #expect(try harness.written() == RawFrame.data(stream: 1, Array(10..<25)))
        #expect(writability.withLockedValue { $0 } == [false, true])
        // A larger initial window (SETTINGS) applies to open streams too; frames stay within 16,384 bytes.
        try harness.feed(RawFrame.settings([(0x4, 100_000)]) + RawFrame.windowUpdate(stream: 0, 100_000))
        _ = try harness.forwarded()
        harness.path.send(harness.registered, ByteBuffer(repeating: 7, count: 20_000))
        harness.path.flush()
        let written = try harness.written()
        #expect(written.count == 20_000 + 2 * 9)
        #expect(Array(written[0..<9]) == RawFrame.header(length: 16_384, type: 0, stream: 1))
        #expect(Array(written[(9 + 16_384)..<(18 + 16_384)]) == RawFrame.header(length: 20_000 - 16_384, type: 0, stream: 1))
    }

    @Test("""
        returns a stream's window only while its reader takes bytes, once half of it is due (after a read or on resuming); \
        tops the connection window up to its size when half is used
        """)
    func returnsWindows() throws {
        let harness = try DataPathHarness(settings: HBONEHTTP2Settings(streamWindow: 1000, connectionWindow: 200_000))
        defer { harness.finish() }
        harness.path.setConsuming(harness.registered, false)
        try harness.feed(RawFrame.data(stream: 1, [UInt8](repeating: 1, count: 600)))
        // The connection's 65,535-byte default window less 600 is below half of 200,000: topped up. The paused stream is not.
        #expect(try harness.written() == RawFrame.windowUpdate(stream: 0, UInt32(200_000 - (65_535 - 600))))
        harness.path.setConsuming(harness.registered, true)
        #expect(try harness.written() == RawFrame.windowUpdate(stream: 1, 600))
        // Half a stream window (500) due: returned at the end of the read.
        try harness.feed(RawFrame.data(stream: 1, [UInt8](repeating: 1, count: 300)) + RawFrame.data(stream: 1, [UInt8](repeating: 1, count: 300)))
        #expect(try harness.written() == RawFrame.windowUpdate(stream: 1, 600))
        // Less than half due on resuming: kept (the peer still has 700 to send with), returned with the next read's.
        harness.path.setConsuming(harness.registered, false)
        try harness.feed(RawFrame.data(stream: 1, [UInt8](repeating: 1, count: 300)))
        harness.path.setConsuming(harness.registered, true)
        #expect(try harness.written().isEmpty, "a pause and resume with 300 of 1,000 due sends no WINDOW_UPDATE")
        try harness.feed(RawFrame.data(stream: 1, [UInt8](repeating: 1, count: 200)))
        #expect(try harness.written() == RawFrame.windowUpdate(stream: 1, 500))
        // A peer that spent the whole window while the reader paused gets it back on resuming (no deadlock).
        harness.path.setConsuming(harness.registered, false)
        try harness.feed(RawFrame.data(stream: 1, [UInt8](repeating: 1, count: 1000)))
        #expect(try harness.written().isEmpty)
        harness.path.setConsuming(harness.registered, true)
        #expect(try harness.written() == RawFrame.windowUpdate(stream: 1, 1000))
        #expect(try harness.delivered().count == 2700)
    }

    @Test("bad input: DATA beyond a window, bad padding, an empty-DATA flood and a window pushed past 2^31-1 end the connection with GOAWAY and a typed error",
          arguments: [
            (RawFrame.data(stream: 1, [UInt8](repeating: 0, count: 101)), UInt32(3), "more than its 100-byte window"),
            (RawFrame.data(stream: 3, [UInt8](repeating: 0, count: 65_536)), UInt32(3), "beyond the connection's receive window"),
            (RawFrame.header(length: 0, type: 0, flags: 0x8, stream: 1), UInt32(1), "no room for its pad length"),
            (Array((0..<17).map { _ in RawFrame.data(stream: 1, []) }.joined()), UInt32(0xB), "empty DATA frames in a row"),
            (RawFrame.header(length: 4, type: 0, flags: 0x8, stream: 1) + [9, 1, 2, 3], UInt32(1), "padding"),
            (RawFrame.windowUpdate(stream: 0, 0x7FFF_FFFF), UInt32(3), "above 2^31-1"),
          ])
    func violations(frame: [UInt8], code: UInt32, reason: String) throws {
        let harness = try DataPathHarness(settings: HBONEHTTP2Settings(streamWindow: 100))
        defer { harness.finish() }
        let error = #expect(throws: HBONEError.self) {
            try harness.feed(frame)
            try harness.connection.throwIfErrorCaught()
        }
        #expect(error.map { "\($0)".contains(reason) } == true, "\(String(describing: error)) should say \"\(reason)\"")
        let written = try harness.written()
        #expect(Array(written.prefix(9)) == RawFrame.header(length: 8, type: 7, stream: 0), "GOAWAY first")
        #expect(Array(written.suffix(4)) == withUnsafeBytes(of: code.bigEndian, Array.init))
        #expect(!harness.connection.isActive)
        #expect(try harness.delivered().isEmpty)
    }

    @Test("a connection closed in the middle of a read (NIOHTTP2's connection error) gets nothing more of that read: no frame passed on, no DATA delivered")
    func nothingAfterClose() throws {
        // Before the fix, frames after the error reached NIOHTTP2 after it had closed the connection and opened
        // stream channels nothing closed, which held the connection in a cycle (Fuzz/Regressions/hbone-frames).
        let harness = try DataPathHarness()
        defer { harness.finish() }
        let closer = CloseOnFirstRead()
        try harness.connection.pipeline.syncOperations.addHandler(closer)
        try? harness.feed(RawFrame.ping() + RawFrame.data(stream: 1, [1, 2, 3]) + RawFrame.ping())
        #expect(!harness.connection.isActive)
        #expect(closer.reads == 1, "frames passed on after the close: \(closer.reads - 1)")
        #expect(try harness.delivered().isEmpty, "DATA delivered after the close")
    }

    @Test("NIOHTTP2's connection WINDOW_UPDATEs pass and count toward the receive window the data path enforces")
    func nioWindowUpdates() throws {
        let harness = try DataPathHarness()
        defer { harness.finish() }
        try harness.connection.writeOutbound(ByteBuffer(bytes: RawFrame.windowUpdate(stream: 0, 1000)))
        #expect(try harness.written() == RawFrame.windowUpdate(stream: 0, 1000))
        // 66,000 bytes fit 65,535 + 1,000; without the update they would break the window.
        do { try harness.feed(RawFrame.data(stream: 1, [UInt8](repeating: 2, count: 66_000))) } catch { Issue.record("\(error)") }
        #expect(harness.connection.isActive)
        #expect(try harness.delivered().count == 66_000)
    }

    @Test("a server stream's DATA waits for its 200 when NIOHTTP2 has not sent it yet")
    func dataWaitsForAnswer() throws {
        let harness = try DataPathHarness(role: .server)
        defer { harness.finish() }
        harness.path.send(harness.registered, ByteBuffer(string: "greeting"))
        harness.path.flush()
        let early = try harness.written()
        #expect(early.isEmpty, "no DATA before the HEADERS: \(early)")
        let headers = RawFrame.header(length: 1, type: 1, flags: 0x4, stream: 1) + [0x88]  // :status 200 (HPACK static index 8)
        try harness.connection.writeOutbound(ByteBuffer(bytes: headers))
        #expect(try harness.written() == headers + RawFrame.data(stream: 1, Array("greeting".utf8)))
    }

    @Test("WINDOW_UPDATEs for a stream that registers later are credited to it; an overflowing one resets only that stream")
    func earlyCreditAndStreamOverflow() throws {
        let harness = try DataPathHarness(streamID: 1)
        defer { harness.finish() }
        try harness.feed(RawFrame.windowUpdate(stream: 3, 1000) + RawFrame.windowUpdate(stream: 0, 100_000))
        #expect(try harness.forwarded() == RawFrame.windowUpdate(stream: 3, 1000), "NIOHTTP2 still sees the stream's update")
        _ = try harness.written()
        let later = HBONEStreamDataCodec()
        let laterChannel = EmbeddedChannel(handler: later)
        let stream3 = try #require(harness.path.register(later, streamID: 3))
        harness.path.send(stream3, ByteBuffer(repeating: 3, count: 66_535))
        harness.path.flush()
        #expect(try harness.written().count == 66_535 + 5 * 9, "65,535 + 1,000 bytes of window, in frames of at most 16,384")
        // Stream 1's window pushed past 2^31-1: stream 1 is reset with FLOW_CONTROL_ERROR, the connection lives.
        try harness.feed(RawFrame.windowUpdate(stream: 1, 0x7FFF_FFFF))
        #expect(harness.connection.isActive)
        #expect(try harness.stream.readOutbound(as: HTTP2Frame.FramePayload.self).map { if case .rstStream(.flowControlError) = $0 { true } else { false } } == true)
        _ = try laterChannel.finish()
    }


    @Test("NIOHTTP2 accepts DATA beyond the default 65,535-byte connection window on a stream not yet on the data path (its view was raised with the peer's)")
    func nioSeesTheRaisedWindow() throws {
        let connection = EmbeddedChannel()
        let settings = HBONEHTTP2Settings()
        try connection.pipeline.syncOperations.addHandler(HBONEDataPath(role: .client, settings: settings))
        let http2 = NIOHTTP2Handler(mode: .client, eventLoop: connection.eventLoop, connectionConfiguration: settings.connectionConfiguration, streamConfiguration: settings.streamConfiguration) { $0.close() }
        try connection.pipeline.syncOperations.addHandler(http2)
        let multiplexer = try http2.syncMultiplexer()
        try connection.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 15008)).wait()
        // The server's SETTINGS, and its ACK of ours (1 MiB frames from then on): the data path raises the
        // connection window through NIOHTTP2 at the end of the read.
        try connection.writeInbound(ByteBuffer(bytes: RawFrame.settings([]) + RawFrame.header(length: 0, type: 4, flags: 0x1, stream: 0)))
        connection.pipeline.fireChannelReadComplete()
        let received = NIOLockedValueBox(0)
        let headers = HPACKHeaders([(":method", "CONNECT"), (":authority", "10.0.0.7:8080")])
        multiplexer.createStreamChannel(promise: nil) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(ByteCounter(count: received))
                stream.writeAndFlush(HTTP2Frame.FramePayload.headers(.init(headers: headers)), promise: nil)
            }
        }
        connection.embeddedEventLoop.run()
        // 200 and 70,000 bytes of DATA in one read: the stream is not registered, so NIOHTTP2 checks the DATA.
        try connection.writeInbound(ByteBuffer(bytes: RawFrame.header(length: 1, type: 1, flags: 0x4, stream: 1) + [0x88] + RawFrame.data(stream: 1, [UInt8](repeating: 5, count: 70_000))))
        connection.pipeline.fireChannelReadComplete()
        #expect(connection.isActive, "NIOHTTP2 refused DATA within the window the peer was given")
        #expect(received.withLockedValue { $0 } == 70_000)
        _ = try? connection.finish()
    }

    @Test("DATA still in flight for a stream the server has closed does not end the connection")
    func inFlightAfterClose() async throws {
        let echo = try await TCPUpstream.echo()
        let closing = try await TCPUpstream { CloseOnReadHandler() }
        let harness = try await HBONEHarness()
        let client = try harness.client()
        // The upstream closes on the first bytes; megabytes are still on their way to the server for that stream.
        let doomed = try await client.openStream(harness.request(to: closing.address))
        try? await doomed.executeThenClose { inbound, outbound in
            let chunk = ByteBuffer(repeating: 1, count: 256 << 10)
            for _ in 0..<64 { try await outbound.write(chunk) }
            for try await _ in inbound {}
        }
        // The connection (the pool's only one) still carries new streams.
        #expect(try await roundTrip(try await client.openStream(harness.request(to: echo.address)), "still here") == "still here")
        #expect(await client.pool.dialCount == 1)
        await client.close()
        await harness.server.shutdown()
        await echo.close()
        await closing.close()
    }

}

extension HBONEMemoryHeavyTests {
    @Suite("HBONE bulk transfers on the data path")
    struct DataPathBulkTests {
        @Test("an upstream that speaks first: 4 MiB right behind the 200, twice, and the pooled connections live on")
        func serverSpeaksFirst() async throws {
            let greeter = try await TCPUpstream { GreetingHandler(bytes: 4 << 20) }
            let harness = try await HBONEHarness()
            let client = try harness.client()
            let request = harness.request(to: greeter.address)
            for _ in 0..<2 {
                let (_, received) = try await spliceBulk(client: client, request: request, bytes: 0)
                #expect(received.count == 4 << 20)
            }
            // Spliced streams use a connection on their socket's event loop (one or two here); none may have died.
            #expect(await client.pool.connectionCount() == client.pool.dialCount, "the DATA that came with the 200 must not break a connection")
            await client.close()
            await harness.server.shutdown()
            await greeter.close()
        }

        @Test("24 MiB each way through a spliced tunnel (beyond the 16 MiB connection window), with the data path on both ends")
        func bulkBothEnds() async throws {
            let upstream = try await TCPUpstream.echo()
            let harness = try await HBONEHarness()
            let client = try harness.client()
            let request = harness.request(to: upstream.address)
            let (sent, echoed) = try await spliceBulk(client: client, request: request, bytes: 24 << 20)
            #expect(sent.count == 24 << 20)
            #expect(echoed == sent, "\(echoed.count) bytes back, \(sent.count) sent; SHA-256 \(echoed.hex) vs \(sent.hex)")
            #expect(await client.pool.dataPathFlags(for: try client.poolKey(for: request)) == [true])
            await client.close()
            await harness.server.shutdown()
            await upstream.close()
        }

    }
}

/// Records the data path's writability events on a stream.
final class WritabilityRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let events: NIOLockedValueBox<[Bool]>
    init(events: NIOLockedValueBox<[Bool]>) { self.events = events }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case HBONEStreamEvent.writable(let writable) = event { events.withLockedValue { $0.append(writable) } }
        context.fireUserInboundEventTriggered(event)
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }
}

/// Closes the connection as soon as anything arrives.
final class CloseOnReadHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.close(promise: nil) }
}

/// Sends `bytes` bytes as soon as the connection is up, then half-closes (a server that speaks first).
final class GreetingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let bytes: Int
    init(bytes: Int) { self.bytes = bytes }
    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(repeating: 7, count: bytes))).whenComplete { _ in channel.close(mode: .output, promise: nil) }
        context.fireChannelActive()
    }
    // The client's end of input changes nothing: closing fully now would drop the unwritten greeting
    // (NIO escalates the output close to a full close once the greeting is written).
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Counts the DATA bytes a stream channel receives.
final class ByteCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTP2Frame.FramePayload
    let count: NIOLockedValueBox<Int>
    init(count: NIOLockedValueBox<Int>) { self.count = count }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .data(let frame) = unwrapInboundIn(data), case .byteBuffer(let bytes) = frame.data {
            count.withLockedValue { $0 += bytes.readableBytes }
        }
    }
}

/// Stands in for NIOHTTP2 meeting a connection error: closes the connection on the first bytes it is passed.
private final class CloseOnFirstRead: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private(set) var reads = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads += 1
        if reads == 1 { context.close(promise: nil) }
    }
}
