import Foundation
import MeshProto
import MeshTestSupport
import SwiftProtobuf
import Testing
import XDSClient
import XDSServer

@Suite("ADSClient against XDSServer over gRPC")
struct ADSClientTests {
    @Test("wildcard: the full set, then updates and removals, each ACKed", arguments: bothVariants)
    func wildcard(variant: ADSClient.Variant) async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b"])), forNode: "node-1")
            try await withADSClient(port: port, variant: variant) { client in
                client.subscribe(.cluster, to: .wildcard)
                let watch = WatchReader(client.watch(.cluster))
                let first = try await watch.next()
                #expect(first.names == ["a", "b"])
                #expect(first.updated == ["a", "b"])
                #expect(await eventually { server.counters.snapshot().acks >= 1 })

                try await server.cache.updateSnapshot(
                    forNode: "node-1",
                    upserting: [Fixture.resource("a", Fixture.cluster("a", timeoutSeconds: 9)), Fixture.resource("c", Fixture.cluster("c"))],
                    removing: [XDSResourceKey(typeURL: XDSTypeURL.cluster, name: "b")]
                )
                let second = try await watch.next()
                #expect(second.names == ["a", "c"])
                #expect(second.updated == ["a", "c"])
                #expect(second.removed == ["b"])
                #expect(second["a"]?.connectTimeout.seconds == 9)
                #expect(await eventually { server.counters.snapshot().acks >= 2 })
                #expect(server.counters.snapshot().nacks == 0)
                #expect(client.counters.nacks == 0)
            }
        }
    }

    @Test("named subscriptions: only what is asked for; subscribe more and unsubscribe at any time", arguments: bothVariants)
    func namedSubscribeUnsubscribe(variant: ADSClient.Variant) async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b", "c"])), forNode: "node-1")
            try await withADSClient(port: port, variant: variant) { client in
                client.subscribe(.cluster, to: .names(["a"]))
                let watch = WatchReader(client.watch(.cluster))
                #expect(try await watch.next().names == ["a"])
                client.subscribe(.cluster, to: .names(["b"]))
                #expect(try await watch.next { $0.names == ["a", "b"] }.updated == ["b"])
                client.unsubscribe(.cluster, from: .names(["a"]))
                let dropped = try await watch.next()
                #expect(dropped.removed == ["a"])
                #expect(dropped.names == ["b"])
                // The server stops sending what was unsubscribed: a change to "a" reaches nobody.
                try await server.cache.updateSnapshot(forNode: "node-1", upserting: [
                    Fixture.resource("a", Fixture.cluster("a", timeoutSeconds: 7)),
                    Fixture.resource("b", Fixture.cluster("b", timeoutSeconds: 8)),
                ])
                let changed = try await watch.next()
                #expect(changed.updated == ["b"])
                #expect(changed.names == ["b"])
            }
        }
    }

    @Test("a validation hook's refusal NACKs the response; nothing of it is applied and the next good one is", arguments: bothVariants)
    func nackKeepsState(variant: ADSClient.Variant) async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b"])), forNode: "node-1")
            try await withADSClient(port: port, variant: variant) { client in
                struct TooSlow: Error, CustomStringConvertible { var description: String { "connect timeout above 60 s" } }
                let clusters = XDSResourceType.cluster.validated { cluster in
                    if cluster.connectTimeout.seconds > 60 { throw TooSlow() }
                }
                client.subscribe(clusters, to: .wildcard)
                let watch = WatchReader(client.watch(clusters))
                let first = try await watch.next()
                #expect(first.names == ["a", "b"])
                // Wait for the ACK, so that it is not overtaken by the next push (which would make it stale).
                #expect(await eventually { server.counters.snapshot().acks == 1 })

                // One good change and one bad one in the same response: neither is applied.
                try await server.cache.updateSnapshot(forNode: "node-1", upserting: [
                    Fixture.resource("a", Fixture.cluster("a", timeoutSeconds: 5)),
                    Fixture.resource("b", Fixture.cluster("b", timeoutSeconds: 600)),
                ])
                #expect(await eventually { server.counters.snapshot().nacks == 1 })
                #expect(client.counters.nacks == 1)
                let kept = try #require(client.current(clusters))
                #expect(kept["a"]?.connectTimeout.seconds == 1)
                #expect(kept["b"]?.connectTimeout.seconds == 1)
                #expect(kept.version == first.version)

                try await server.cache.updateSnapshot(forNode: "node-1", upserting: [Fixture.resource("b", Fixture.cluster("b", timeoutSeconds: 6))])
                let fixed = try await watch.next()
                #expect(fixed["a"]?.connectTimeout.seconds == 5)
                #expect(fixed["b"]?.connectTimeout.seconds == 6)
                #expect(await eventually { server.counters.snapshot().acks >= 2 })
                #expect(server.counters.snapshot().nacks == 1)
            }
        }
    }

    @Test("an undecodable Any is NACKed and the old state kept", arguments: bothVariants)
    func undecodableAny(variant: ADSClient.Variant) async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a"])), forNode: "node-1")
            try await withADSClient(port: port, variant: variant) { client in
                client.subscribe(.cluster, to: .wildcard)
                let watch = WatchReader(client.watch(.cluster))
                #expect(try await watch.next().names == ["a"])
                try await server.cache.updateSnapshot(forNode: "node-1", upserting: [XDSResource(name: "bad", any: garbage(XDSTypeURL.cluster))])
                #expect(await eventually { server.counters.snapshot().nacks == 1 })
                #expect(client.current(.cluster)?.names == ["a"])
            }
        }
    }

    @Test("two resources with the same name in one state-of-the-world response are NACKed")
    func duplicateNameSotW() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a"])), forNode: "node-1")
            try await withADSClient(port: port, variant: .stateOfTheWorld) { client in
                client.subscribe(.cluster, to: .wildcard)
                let watch = WatchReader(client.watch(.cluster))
                #expect(try await watch.next().names == ["a"])
                // Two snapshot entries whose Cluster.name is the same "dup".
                try await server.cache.updateSnapshot(forNode: "node-1", upserting: [
                    Fixture.resource("x", Fixture.cluster("dup", timeoutSeconds: 1)),
                    Fixture.resource("y", Fixture.cluster("dup", timeoutSeconds: 2)),
                ])
                #expect(await eventually { server.counters.snapshot().nacks == 1 })
                #expect(client.current(.cluster)?.names == ["a"])
            }
        }
    }

    @Test("10,000 resources in one snapshot arrive whole", arguments: bothVariants)
    func tenThousand(variant: ADSClient.Variant) async throws {
        try await withXDSServer { server, port in
            let names = (0..<10_000).map { "cluster-\($0)" }
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(names)), forNode: "node-1")
            try await withADSClient(port: port, variant: variant) { client in
                client.subscribe(.cluster, to: .wildcard)
                let watch = WatchReader(client.watch(.cluster))
                let update = try await watch.next()
                #expect(update.count == 10_000)
                #expect(update["cluster-9999"]?.name == "cluster-9999")
                #expect(await eventually { server.counters.snapshot().acks >= 1 })
            }
        }
    }

    @Test("a named resource nobody serves is reported as not existing after the timeout", arguments: bothVariants)
    func doesNotExist(variant: ADSClient.Variant) async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot([Fixture.resource("r1", Fixture.route("r1", cluster: "a"))]), forNode: "node-1")
            try await withADSClient(port: port, variant: variant, configure: { $0.doesNotExistTimeout = .seconds(1) }) { client in
                client.subscribe(.routeConfiguration, to: .names(["r1", "ghost"]))
                let watch = WatchReader(client.watch(.routeConfiguration))
                let missing = try await watch.next { $0.doesNotExist.contains("ghost") }
                #expect(!missing.names.contains("ghost"))
                #expect(await eventually { client.current(.routeConfiguration)?.names == ["r1"] })
            }
        }
    }

    @Test("a complete state-of-the-world type that leaves out a named resource says it does not exist at once")
    func completeSotWOmission() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a"])), forNode: "node-1")
            try await withADSClient(port: port, variant: .stateOfTheWorld) { client in
                client.subscribe(.cluster, to: .names(["a", "ghost"]))
                let watch = WatchReader(client.watch(.cluster))
                let first = try await watch.next()
                #expect(first.names == ["a"])
                #expect(first.doesNotExist == ["ghost"])
            }
        }
    }

    @Test("a burst of incremental server updates (some coalesced by the server) all arrive, removals included", arguments: bothVariants)
    func burstOfIncrementalUpdates(variant: ADSClient.Variant) async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["base"])), forNode: "node-1")
            try await withADSClient(port: port, variant: variant) { client in
                client.subscribe(.cluster, to: .wildcard)
                let watch = WatchReader(client.watch(.cluster))
                #expect(try await watch.next().names == ["base"])
                for index in 0..<40 {
                    try await server.cache.updateSnapshot(forNode: "node-1", upserting: [
                        Fixture.resource("c\(index)", Fixture.cluster("c\(index)", timeoutSeconds: Int64(index + 1))),
                    ], removing: index % 4 == 3 ? [XDSResourceKey(typeURL: XDSTypeURL.cluster, name: "c\(index - 1)")] : [])
                }
                let expected = Set(["base"] + (0..<40).filter { $0 % 4 != 2 }.map { "c\($0)" })
                #expect(await eventually { client.current(.cluster)?.names == expected })
                #expect(client.current(.cluster)?["c39"]?.connectTimeout.seconds == 40)
            }
        }
    }

    @Test("a watch of a type that does not retain values sees the updated values and every name")
    func nonRetainingWatch() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b"])), forNode: "node-1")
            try await withADSClient(port: port, variant: .delta) { client in
                let lean = XDSResourceType.cluster.retainingValues(false)
                let watch = WatchReader(client.watch(lean))
                client.subscribe(lean, to: .wildcard)
                let first = try await watch.next()
                #expect(first.names == ["a", "b"])
                #expect(first["a"]?.name == "a")
                try await server.cache.updateSnapshot(forNode: "node-1", upserting: [Fixture.resource("b", Fixture.cluster("b", timeoutSeconds: 4))])
                let second = try await watch.next()
                #expect(second.updated == ["b"])
                #expect(second["b"]?.connectTimeout.seconds == 4)
                #expect(second["a"] == nil, "not retained, not updated")
                #expect(second.names == ["a", "b"])
            }
        }
    }

    @Test("the legacy wildcard (an empty name list) gets every resource too", arguments: bothVariants)
    func legacyWildcard(variant: ADSClient.Variant) async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b"])), forNode: "node-1")
            try await withADSClient(port: port, variant: variant, configure: { $0.legacyWildcard = true }) { client in
                client.subscribe(.cluster, to: .wildcard)
                let watch = WatchReader(client.watch(.cluster))
                #expect(try await watch.next().names == ["a", "b"])
                try await server.cache.updateSnapshot(forNode: "node-1", upserting: [Fixture.resource("c", Fixture.cluster("c"))])
                #expect(try await watch.next().names == ["a", "b", "c"])
            }
        }
    }
}
