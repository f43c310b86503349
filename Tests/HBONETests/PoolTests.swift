import Foundation
import HBONE
import MeshIdentity
import NIOCore
import NIOPosix
import MeshTestSupport
import Testing

/// Opens `count` streams at once through `client` and keeps them open; returns them.
func openConcurrently(_ count: Int, client: HBONEClient, request: HBONEConnectRequest) async throws -> [NIOAsyncChannel<ByteBuffer, ByteBuffer>] {
    try await withThrowingTaskGroup(of: NIOAsyncChannel<ByteBuffer, ByteBuffer>.self) { group in
        for _ in 0..<count {
            group.addTask { try await client.openStream(request) }
        }
        var streams: [NIOAsyncChannel<ByteBuffer, ByteBuffer>] = []
        for try await stream in group { streams.append(stream) }
        return streams
    }
}

/// Checks a stream still works end to end, then closes it.
func roundTrip(_ stream: NIOAsyncChannel<ByteBuffer, ByteBuffer>, _ text: String) async throws -> String {
    try await stream.executeThenClose { inbound, outbound in
        try await outbound.write(ByteBuffer(string: text))
        outbound.finish()
        return String(buffer: try await readAll(inbound))
    }
}

@Suite("HBONE connection pool", .serialized)
struct PoolTests {
    @Test("100 concurrent streams share one TLS connection; 150 open a second one")
    func sharing() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let client = try harness.client()
        let request = harness.request(to: upstream.address)
        let key = try client.poolKey(for: request)

        let first = try await openConcurrently(100, client: client, request: request)
        #expect(await client.pool.connectionCount(for: key) == 1)
        #expect(await client.pool.dialCount == 1)
        #expect(harness.server.connectionCount == 1)

        let more = try await openConcurrently(50, client: client, request: request)
        #expect(await client.pool.connectionCount(for: key) == 2)
        #expect(await client.pool.dialCount == 2)
        #expect(harness.server.connectionCount == 2)

        for (index, stream) in (first + more).enumerated() {
            #expect(try await roundTrip(stream, "stream \(index)") == "stream \(index)")
        }
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("a burst of 50 simultaneous requests on a cold key dials once")
    func singleDial() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let client = try harness.client()
        let request = harness.request(to: upstream.address)
        let streams = try await openConcurrently(50, client: client, request: request)
        #expect(await client.pool.dialCount == 1)
        #expect(harness.server.connectionCount == 1)
        for stream in streams { _ = try await roundTrip(stream, "x") }
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("the peer's SETTINGS_MAX_CONCURRENT_STREAMS lowers the per-connection limit")
    func peerLimit() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness(configuration: TestConfig.server { $0.http2.maxConcurrentStreams = 10 })
        let client = try harness.client()
        let request = harness.request(to: upstream.address)
        let streams = try await openConcurrently(25, client: client, request: request)
        #expect(await client.pool.connectionCount() == 3)
        #expect(harness.server.connectionCount == 3)
        for stream in streams { _ = try await roundTrip(stream, "y") }
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("different destination identities or source addresses use different connections")
    func keyed() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let client = try harness.client()
        var request = harness.request(to: upstream.address, source: "127.0.0.11:1000")
        let a = try await client.openStream(request)
        request.forwarding.source = "127.0.0.11:2000"  // same source IP: same key
        let b = try await client.openStream(request)
        #expect(await client.pool.dialCount == 1)
        request.forwarding.source = "127.0.0.12:1000"
        let c = try await client.openStream(request)
        #expect(await client.pool.dialCount == 2)
        request.expectedIdentities.insert(try SPIFFEID("spiffe://example.org/ns/default/sa/other"))
        let d = try await client.openStream(request)
        #expect(await client.pool.dialCount == 3)
        for stream in [a, b, c, d] { _ = try await roundTrip(stream, "z") }
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("GOAWAY: the connection leaves the pool, its open stream finishes, new streams use a new connection")
    func goaway() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness(configuration: TestConfig.server { $0.drainDeadline = .seconds(30) })
        let client = try harness.client()
        let request = harness.request(to: upstream.address)
        let key = try client.poolKey(for: request)
        let open = try await client.openStream(request)
        #expect(await client.pool.connectionCount(for: key) == 1)

        let drain = Task { await harness.server.shutdown() }
        #expect(await eventually { await client.pool.connectionCount(for: key) == 0 })
        // The stream opened before GOAWAY still carries data both ways and ends cleanly.
        #expect(try await roundTrip(open, "after goaway") == "after goaway")
        await drain.value
        #expect(harness.server.connectionCount == 0)
        await client.close()
        await upstream.close()
    }

    @Test("an idle connection is released after the idle timeout")
    func idle() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let client = try harness.client(TestConfig.client { $0.idleTimeout = .milliseconds(200) })
        let request = harness.request(to: upstream.address)
        #expect(try await roundTrip(try await client.openStream(request), "idle") == "idle")
        #expect(await eventually { await client.pool.connectionCount() == 0 && harness.server.connectionCount == 0 })
        // A new request dials again.
        #expect(try await roundTrip(try await client.openStream(request), "again") == "again")
        #expect(await client.pool.dialCount == 2)
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("no connection is left open across many tunnels, refusals and shutdown")
    func noLeaks() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness(handler: RecordingInboundHandler(authorize: { $0.forwarding.source == "127.9.9.9:1" ? .deny(reason: "test") : .allow }))
        let client = try harness.client()
        for round in 0..<20 {
            #expect(try await roundTrip(try await client.openStream(harness.request(to: upstream.address)), "r\(round)") == "r\(round)")
            await #expect(throws: HBONEError.self) { _ = try await client.openStream(harness.request(to: upstream.address, source: "127.9.9.9:1")) }
        }
        await client.close()
        await harness.server.shutdown()
        let hbonePort = harness.address.port!
        let upstreamPort = upstream.port
        // Only this test's ports: other suites run in parallel.
        #expect(await eventually { liveTCPConnections(port: hbonePort) == 0 && liveTCPConnections(port: upstreamPort) == 1 })
        await upstream.close()
        #expect(await eventually { liveTCPConnections(port: upstreamPort) == 0 })
    }
}
