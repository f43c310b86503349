import Foundation
import NIOConcurrencyHelpers
import HBONE
import NIOCore
import NIOPosix
import MeshTestSupport
import Testing

/// Forwards bytes one way to `partner` unless the relay is frozen (then drops them, like a peer that hangs).
final class RelayHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let partner: any Channel
    let frozen: NIOLockedValueBox<Bool>
    init(partner: any Channel, frozen: NIOLockedValueBox<Bool>) {
        self.partner = partner
        self.frozen = frozen
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !frozen.withLockedValue({ $0 }) { partner.writeAndFlush(unwrapInboundIn(data), promise: nil) }
    }
    func channelInactive(context: ChannelHandlerContext) { partner.close(promise: nil) }
}

/// A TCP relay in front of `target` that can be frozen.
func frozenableRelay(to target: SocketAddress, frozen: NIOLockedValueBox<Bool>) async throws -> any Channel {
    try await tcpRelay(to: target) { partner, _ in RelayHandler(partner: partner, frozen: frozen) }
}

@Suite("HBONE keepalive")
struct KeepaliveTests {
    @Test("a peer that stops answering PINGs is dropped after the timeout (shortened timers)")
    func unansweredPings() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let frozen = NIOLockedValueBox(false)
        let relay = try await frozenableRelay(to: harness.address, frozen: frozen)
        // Short enough for a test, long enough that a loaded CI machine (the whole suite runs in
        // parallel on two cores) still gets a PING answered in time while the peer is alive.
        let client = try harness.client(TestConfig.client { $0.keepalive = HBONEKeepalive(interval: .milliseconds(250), timeout: .seconds(2)) })
        var request = harness.request(to: upstream.address)
        request.peer = relay.localAddress!
        let stream = try await client.openStream(request)
        // While the peer answers, PINGs keep the connection (more than the timeout passes).
        try await Task.sleep(for: .milliseconds(2500))
        #expect(await client.pool.connectionCount() == 1)
        #expect(await client.pool.keepaliveClosureCount == 0)
        frozen.withLockedValue { $0 = true }
        // Taken out of use (and counted) when the PING times out, before TLS's close (which waits for close_notify) is over.
        #expect(await eventually { await client.pool.connectionCount() == 0 })
        #expect(await eventually { await client.pool.keepaliveClosureCount == 1 })
        // The stream on the dropped connection ends instead of hanging.
        try? await stream.executeThenClose { inbound, _ in for try await _ in inbound {} }
        await client.close()
        try await relay.close()
        await harness.server.shutdown()
        await upstream.close()
    }
}
