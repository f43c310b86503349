import Foundation
import NIOConcurrencyHelpers
import IdentityServices
import MeshIdentity
import MeshProto
import MeshTestSupport
import NIOCore
import NIOPosix
import Testing
import XDSClient
import XDSServer

@Suite("ADSClient reconnects, keeps its state, and survives bad servers")
struct ReconnectTests {
    @Test("server restart mid-stream: the last state keeps serving; the client reconnects and resumes", arguments: bothVariants)
    func serverRestart(variant: ADSClient.Variant) async throws {
        let cache = XDSSnapshotCache()
        await cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b"])), forNode: "node-1")
        let first = XDSServer(cache: cache, configuration: .init(host: "127.0.0.1", port: 0))
        let firstRun = Task { try await first.run() }
        let port = try await first.listeningPort()
        try await withADSClient(port: port, variant: variant) { client in
            client.subscribe(.cluster, to: .wildcard)
            let watch = WatchReader(client.watch(.cluster))
            #expect(try await watch.next().names == ["a", "b"])

            first.shutdown()
            _ = await firstRun.result
            #expect(await eventually { !client.counters.connected })
            #expect(client.current(.cluster)?.names == ["a", "b"], "the last good state keeps serving while disconnected")

            try await cache.updateSnapshot(forNode: "node-1", upserting: [Fixture.resource("c", Fixture.cluster("c"))])
            let second = XDSServer(cache: cache, configuration: .init(host: "127.0.0.1", port: port))
            let secondRun = Task { try await second.run() }
            let resumed = try await watch.next()
            #expect(resumed.updated == ["c"], "unchanged resources are not reported again")
            #expect(resumed.names == ["a", "b", "c"])
            #expect(client.counters.streams >= 2)
            #expect(await eventually { second.counters.snapshot().acks >= 1 })
            second.shutdown()
            _ = await secondRun.result
        }
    }

    @Test("two replicas with the same state: the client starts past a dead one, fails over when its replica dies, and keeps its versions", arguments: bothVariants)
    func replicaFailover(variant: ADSClient.Variant) async throws {
        // Replicas compute their snapshots independently from the same input: two caches, same content.
        let caches = [XDSSnapshotCache(), XDSSnapshotCache()]
        for cache in caches { await cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b"])), forNode: "node-1") }
        let replicas = caches.map { XDSServer(cache: $0, configuration: .init(host: "127.0.0.1", port: 0)) }
        let runs = replicas.map { replica in Task { try await replica.run() } }
        let ports = [try await replicas[0].listeningPort(), try await replicas[1].listeningPort()]
        let reserved = try ReservedPort(), dead = reserved.port
        let servers = [dead, ports[0], ports[1]].map { ADSClient.Server(host: "127.0.0.1", port: $0) }
        try await withADSClient(port: dead, variant: variant, configure: { $0.servers = servers }) { client in
            client.subscribe(.cluster, to: .wildcard)
            let watch = WatchReader(client.watch(.cluster))
            #expect(try await watch.next().names == ["a", "b"], "served by the first replica that is up")
            #expect(client.counters.server == servers[1])

            replicas[0].shutdown()
            _ = await runs[0].result
            #expect(await eventually { client.counters.connected && client.counters.server == servers[2] }, "failed over: \(client.counters)")
            #expect(client.current(.cluster)?.names == ["a", "b"])

            // The second replica knows the client holds its versions: only a change is sent.
            try await caches[1].updateSnapshot(forNode: "node-1", upserting: [Fixture.resource("c", Fixture.cluster("c"))])
            let resumed = try await watch.next()
            #expect(resumed.updated == ["c"], "what the client holds is not sent again")
            #expect(resumed.names == ["a", "b", "c"])

            // It holds the same versions a fresh client of the surviving replica gets.
            let held = client.resourceVersions()
            try await withADSClient(port: ports[1], variant: variant) { fresh in
                fresh.subscribe(.cluster, to: .wildcard)
                _ = try await WatchReader(fresh.watch(.cluster)).next()
                #expect(fresh.resourceVersions() == held, "fresh \(fresh.resourceVersions()) vs failed over \(held)")
            }
            #expect(held[XDSResourceType.cluster.typeURL]?.count == 3)
        }
        replicas[1].shutdown()
        _ = await runs[1].result
        withExtendedLifetime(reserved) {}
    }

    @Test("a server that answers with bytes that are not HTTP/2 is survived: no crash, retries, state kept")
    func garbageServer() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(GarbageWriter()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await withADSClient(port: port, variant: .delta, configure: { $0.connectTimeout = .milliseconds(300) }) { client in
            client.subscribe(.cluster, to: .wildcard)
            #expect(await eventually { client.counters.streams >= 3 }, "keeps retrying with backoff")
            #expect(client.counters.responses == 0)
            #expect(client.current(.cluster) == nil)
        }
        try await channel.close()
        try await group.shutdownGracefully()
    }

    @Test("a response above maxResponseBytes is refused by the transport: no state, no crash, the client retries")
    func oversizedResponse() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters((0..<200).map { "cluster-\($0)" })), forNode: "node-1")
            try await withADSClient(port: port, variant: .delta, configure: { $0.maxResponseBytes = 1024 }) { client in
                client.subscribe(.cluster, to: .wildcard)
                #expect(await eventually { client.counters.streams >= 2 })
                #expect(client.counters.responses == 0)
                #expect(client.current(.cluster) == nil)
            }
        }
    }

    @Test("mTLS from an SVIDSource: a fresh transport per connection; a server with the wrong identity is refused")
    func mutualTLS() async throws {
        let pki = try ServerClientPKI()
        let serverSecurity = try SPIFFEGRPCSecurity.server(svids: pki.source(pki.serverID), bundles: pki.bundles, authorizer: .exactly(pki.clientID))
        try await withXDSServer(security: serverSecurity) { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a"])), forNode: "node-1")
            let svids = try pki.source(pki.clientID)
            let builds = Counter()
            try await withADSClient(port: port, variant: .delta, configure: { configuration in
                configuration.transportSecurity = {
                    builds.increment()
                    return try SPIFFEGRPCSecurity.client(svids: svids, bundles: pki.bundles, authorizer: .exactly(pki.serverID))
                }
            }) { client in
                client.subscribe(.cluster, to: .wildcard)
                let update = try await WatchReader(client.watch(.cluster)).next()
                #expect(update.names == ["a"])
                #expect(builds.value >= 1)
            }

            // The client expects another server identity: it refuses the handshake and gets nothing.
            let other = try SPIFFEID("spiffe://example.org/ns/istio-system/sa/istiod")
            try await withADSClient(port: port, variant: .delta, configure: { configuration in
                configuration.transportSecurity = {
                    try SPIFFEGRPCSecurity.client(svids: svids, bundles: pki.bundles, authorizer: .exactly(other))
                }
            }) { client in
                client.subscribe(.cluster, to: .wildcard)
                #expect(await eventually { client.counters.streams >= 2 })
                #expect(client.counters.responses == 0)
            }
        }
    }
}

/// A thread-safe counter for closures the client calls.
final class Counter: Sendable {
    private let count = NIOLockedValueBox(0)
    func increment() { count.withLockedValue { $0 += 1 } }
    var value: Int { count.withLockedValue { $0 } }
}

/// Answers every connection with 4 KiB that are not HTTP/2, then closes it.
private final class GarbageWriter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        // 4 KiB fit the empty socket buffer: the flush writes them before the close.
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: Array(repeating: 0xAB, count: 4096))), promise: nil)
        context.close(promise: nil)
    }
}

