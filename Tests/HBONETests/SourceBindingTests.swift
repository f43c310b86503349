import Foundation
import NIOConcurrencyHelpers
@testable import HBONE
import NIOCore
import NIOEmbedded
import NIOPosix
import MeshIdentity
import Testing
import MeshTestSupport

@Suite("HBONE client: source binding, event-loop placement and metrics of spliced tunnels")
struct SourceBindingTests {
    @Test("the pool key's source IP is the outgoing connection's local address")
    func boundToSource() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let client = try harness.client()
        #expect(try await roundTrip(try await client.openStream(harness.request(to: upstream.address, source: "127.0.0.77:41000")), "a") == "a")
        #expect(harness.handler.last?.peerAddress?.ipAddress == "127.0.0.77")
        #expect(harness.handler.last?.forwarding.source == "127.0.0.77:41000")
        // Another source IP is another key, and another local address.
        #expect(try await roundTrip(try await client.openStream(harness.request(to: upstream.address, source: "127.0.0.78:41000")), "b") == "b")
        #expect(harness.handler.last?.peerAddress?.ipAddress == "127.0.0.78")
        #expect(await client.pool.dialCount == 2)
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("a source IP that is not an address of this host is a typed error; bindsSourceAddress false connects from any address")
    func foreignSource() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let client = try harness.client()
        // 192.0.2.0/24 is TEST-NET-1: never an address of this host.
        await #expect(throws: HBONEError.sourceUnavailable("192.0.2.1")) {
            _ = try await client.openStream(harness.request(to: upstream.address, source: "192.0.2.1:5000"))
        }
        #expect(await client.pool.connectionCount() == 0)
        await client.close()

        let unbound = try harness.client(TestConfig.client { $0.bindsSourceAddress = false })
        #expect(try await roundTrip(try await unbound.openStream(harness.request(to: upstream.address, source: "192.0.2.1:5000")), "c") == "c")
        #expect(harness.handler.last?.peerAddress?.ipAddress == "127.0.0.1")
        #expect(harness.handler.last?.forwarding.source == "192.0.2.1:5000")
        await unbound.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("a spliced socket's tunnel runs on a pooled connection on the socket's event loop and reports the verified peer")
    func splicedOnSocketLoop() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let metrics = CountingMetrics()
        let client = HBONEClient(tls: try harness.pki.tls(harness.pki.clientID), configuration: TestConfig.client(), metrics: metrics)
        let request = harness.request(to: upstream.address)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let errors = NIOLockedValueBox<[String]>([])
        // One listener per loop: every accepted socket is tunnelled.
        var listeners: [any Channel] = []
        for loop in loops {
            listeners.append(try await ServerBootstrap(group: loop)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HBONEHoldingHandler())
                        Task {
                            do { try await client.tunnel(request, splicingWith: channel) } catch { errors.withLockedValue { $0.append("\(error)") } }
                        }
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get())
        }
        for listener in listeners {
            let output = try await Interop.run("/usr/bin/env", ["python3", "-c", """
                import socket
                s = socket.create_connection(("127.0.0.1", \(listener.localAddress!.port!))); s.settimeout(20)
                s.sendall(b"same loop"); s.shutdown(socket.SHUT_WR)
                data = b""
                while (chunk := s.recv(65536)): data += chunk
                print(data.decode())
                """])
            #expect(output.stdout == "same loop\n", "\(output.combined)")
        }
        #expect(errors.withLockedValue { $0 }.isEmpty)
        // Each socket's stream lives on a connection dialled on that socket's loop.
        // One key, one connection per socket loop: each socket's stream ran on its own loop's connection.
        let connectionLoops = await client.pool.connectionLoops(for: try client.poolKey(for: request))
        #expect(connectionLoops.count == 2)
        for loop in loops { #expect(connectionLoops.contains { $0 === loop }) }
        #expect(await client.pool.dialCount == 2)
        // The metrics hook saw the verified server identity for opened and closed spliced tunnels.
        #expect(await eventually { metrics.snapshot.closedInfo.count == 2 })
        let snapshot = metrics.snapshot
        #expect(snapshot.openedInfo.map(\.peerID) == [harness.pki.serverID, harness.pki.serverID])
        #expect(snapshot.closedInfo.map(\.peerID) == [harness.pki.serverID, harness.pki.serverID])
        #expect(snapshot.closed.allSatisfy { $0.status == 200 && $0.bytesToDestination == 9 && $0.bytesFromDestination == 9 })
        for listener in listeners { try await listener.close() }
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
        try await group.shutdownGracefully()
    }
}

extension SourceBindingTests {
    @Test("a preferred loop that cannot dial (not a NIOPosix loop) falls back to any connection")
    func nonPosixLoop() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let client = try harness.client()
        let key = try client.poolKey(for: harness.request(to: upstream.address))
        let embedded = EmbeddedEventLoop()
        let first = try await client.pool.acquire(key, on: embedded)
        let second = try await client.pool.acquire(key, on: embedded)
        #expect(first === second)
        #expect(await client.pool.dialCount == 1)
        first.release()
        second.release()
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }
}

@Suite("TCPPassthrough splices two sockets")
struct TCPPassthroughTests {
    @Test("bytes, prelude and half-close go through a plain TCP passthrough; a refused connect is a typed error")
    func passthrough() async throws {
        let upstream = try await TCPUpstream.echo()
        let reserved = try ReservedPort()
        let refusedPort = reserved.port
        let errors = NIOLockedValueBox<[any Error]>([])
        let counts = NIOLockedValueBox<[(UInt64, UInt64)]>([])
        let listener = try await spliceListener { channel in
            do {
                // The first connection goes to the echo upstream, the second to a closed port.
                let target = counts.withLockedValue { $0.count } == 0 && errors.withLockedValue { $0.isEmpty } ? upstream.address : try SocketAddress(ipAddress: "127.0.0.1", port: refusedPort)
                try await TCPPassthrough.splice(channel, to: target, prelude: ByteBuffer(string: "OK ")) { sent, received in
                    counts.withLockedValue { $0.append((sent, received)) }
                }
            } catch {
                errors.withLockedValue { $0.append(error) }
                channel.close(promise: nil)
            }
        }
        let port = listener.localAddress!.port!
        let output = try await sendThenReadToEnd(port: port, "passed through")
        #expect(output.stdout == "OK passed through\n", "\(output.combined)")
        #expect(await eventually { counts.withLockedValue { $0.count } == 1 })
        #expect(counts.withLockedValue { $0.first.map { $0.0 == 14 && $0.1 == 14 } } == true)
        _ = try await Interop.run("/usr/bin/env", ["python3", "-c", """
            import socket
            s = socket.create_connection(("127.0.0.1", \(port))); s.settimeout(20)
            s.recv(1)
            """])
        #expect(await eventually { errors.withLockedValue { $0.count } == 1 })
        #expect(errors.withLockedValue { $0.first is TCPPassthroughError }, "\(errors.withLockedValue { $0 })")
        try await listener.close()
        await upstream.close()
        withExtendedLifetime(reserved) {}
    }
}

/// Records, for each certificate lookup, whether it ran on `loop`'s thread.
private final class LoopRecordingTLS: MeshTLSProvider {
    let inner: MeshTLS
    let loop: any EventLoop
    let onLoop = NIOLockedValueBox<[Bool]>([])

    init(_ inner: MeshTLS, loop: any EventLoop) {
        self.inner = inner
        self.loop = loop
    }

    func meshTLS(for identity: SPIFFEID?) async throws -> MeshTLS {
        onLoop.withLockedValue { $0.append(loop.inEventLoop) }
        return try await inner.meshTLS(for: identity)
    }

    var defaultIdentity: SPIFFEID? { inner.defaultIdentity }
    var trustDomain: TrustDomain { get throws { try inner.trustDomain } }
}

extension SourceBindingTests {
    // A dial in a plain Task ran on the global pool: each wait on a future of the loop was a thread
    // hop, and the dispatch blocks those hops allocate on the loop's thread ended in the pool threads'
    // caches, keeping the loop's heap pages resident after a burst of dials (issue 16, the soak).
    @Test("a dial for a preferred loop runs on that loop, and so does a deadline's body")
    func dialRunsOnPreferredLoop() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loop = group.next()
        let tls = LoopRecordingTLS(try harness.pki.tls(harness.pki.clientID), loop: loop)
        let pool = HBONEConnectionPool(tls: tls, configuration: TestConfig.client(), group: group)
        let key = try harness.client().poolKey(for: harness.request(to: upstream.address))
        let connection = try await pool.acquire(key, on: loop)
        #expect(connection.channel.eventLoop === loop)
        #expect(tls.onLoop.withLockedValue { $0 } == [true])
        connection.release()

        let ranOnLoop = try await withDeadline(.seconds(5), on: loop, error: .settingsTimeout) { loop.inEventLoop }
        #expect(ranOnLoop)

        await pool.close()
        await harness.server.shutdown()
        await upstream.close()
        try await group.shutdownGracefully()
    }
}
