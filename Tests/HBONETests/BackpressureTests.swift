import Foundation
import NIOConcurrencyHelpers
import HBONE
import NIOCore
import NIOPosix
import Testing

/// Accepts the connection and never reads from it (autoRead off): a reader that stopped reading.
final class NeverReadingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}  // at most one read issued before autoRead went off
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// The resident set size of this process, in bytes (/proc/self/status VmRSS).
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
    else { return -1 }
    return kib * 1024
}

/// Tests that move many MiB through tunnels whose both ends live in this process run one at
/// a time, and never beside the backpressure test, which measures the whole process's RSS.
@Suite("HBONE memory-heavy tests", .serialized)
struct HBONEMemoryHeavyTests {}

extension HBONEMemoryHeavyTests {
@Suite("HBONE backpressure")
struct BackpressureTests {
    /// What the client tries to push: far more than the bound below, so that a tunnel without
    /// backpressure (buffering whatever it is offered) would blow through it.
    static let offered = 256 << 20
    /// Flow-control windows (stream 4 MiB, connection 16 MiB, both ends live in this process)
    /// plus loopback socket buffers, TLS records and allocator slack.
    static let bound = 96 << 20

    @Test("a reader that stops reading does not grow the process memory beyond the flow-control windows")
    func stalledReader() async throws {
        let upstream = try await TCPUpstream { NeverReadingHandler() }
        let harness = try await HBONEHarness()
        let client = try harness.client()
        let stream = try await client.openStream(harness.request(to: upstream.address))

        var pattern = ByteBuffer()
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<(1 << 20) / 8 { pattern.writeInteger(generator.next() as UInt64) }
        let chunk = pattern
        let baseline = residentBytes()
        #expect(baseline > 0)

        // Every write is a fresh 1 MiB copy, so bytes a tunnel accepted but could not deliver
        // stay resident: without backpressure the RSS would grow by about what was offered.
        let accepted = NIOLockedValueBox(0)
        let writer = Task {
            try await stream.executeThenClose { _, outbound in
                while accepted.withLockedValue({ $0 }) < Self.offered {
                    var copy = ByteBufferAllocator().buffer(capacity: chunk.readableBytes)
                    copy.writeImmutableBuffer(chunk)
                    try await outbound.write(copy)
                    accepted.withLockedValue { $0 += chunk.readableBytes }
                }
            }
        }

        // Watch until the writer is done or has made no progress for 3 s (the tunnel stopped
        // taking bytes); sample the peak RSS meanwhile. The 120 s limit only guards against hangs.
        var peak = baseline, last = 0, lastChange = Date()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            peak = max(peak, residentBytes())
            let now = accepted.withLockedValue { $0 }
            if now >= Self.offered { break }
            if now != last { last = now; lastChange = Date() } else if Date().timeIntervalSince(lastChange) > 3 { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        peak = max(peak, residentBytes())
        let total = accepted.withLockedValue { $0 }
        let growth = peak - baseline
        print("backpressure: offered \(Self.offered >> 20) MiB, accepted \(total >> 20) MiB before stalling, RSS \(baseline >> 20) MiB -> peak \(peak >> 20) MiB (growth \(growth >> 20) MiB, bound \(Self.bound >> 20) MiB)")

        #expect(total < Self.offered, "the tunnel took everything offered: no backpressure")
        #expect(total > 4 << 20, "the tunnel should at least fill the 4 MiB stream window")
        #expect(growth < Self.bound, "RSS grew by \(growth >> 20) MiB with \(total >> 20) MiB accepted")

        writer.cancel()
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
        _ = await writer.result
    }
}
}
