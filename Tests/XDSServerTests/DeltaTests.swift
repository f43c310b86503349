import Foundation
import MeshProto
import SwiftProtobuf
import MeshTestSupport
import Testing
@testable import XDSServer

@Suite("XDSServer delta over gRPC")
struct DeltaTests {
    @Test("wildcard gets all with content versions; updates send only changes and removals")
    func wildcardUpdatesAndRemovals() async throws {
        try await withXDSServer { server, port in
            let initial = try Fixture.clusters(["a", "b", "c"])
            await server.cache.setSnapshot(try XDSSnapshot(initial), forNode: "node-1")
            let stream = try openDelta(port: port)
            stream.send(deltaRequest(XDSTypeURL.cluster, subscribe: ["*"]))
            let first = try await stream.next()
            #expect(Dictionary(uniqueKeysWithValues: first.resources.map { ($0.name, $0.version) })
                == Dictionary(uniqueKeysWithValues: initial.map { ($0.name, $0.version) }))
            #expect(first.removedResources.isEmpty)
            stream.send(deltaRequest(XDSTypeURL.cluster, nonce: first.nonce))

            let changedA = try Fixture.resource("a", Fixture.cluster("a", timeoutSeconds: 9))
            await server.cache.setSnapshot(try XDSSnapshot([changedA, initial[1]]), forNode: "node-1")
            let second = try await stream.next()
            #expect(second.resources.map(\.name) == ["a"])
            #expect(second.resources.first?.version == changedA.version)
            #expect(second.removedResources == ["c"])
            #expect(try Envoy_Config_Cluster_V3_Cluster(unpackingAny: second.resources[0].resource).connectTimeout.seconds == 9)
            await stream.close()
        }
    }

    @Test("initial_resource_versions on a new stream: only what differs is sent, unknown names are removed")
    func initialResourceVersions() async throws {
        try await withXDSServer { server, port in
            let resources = try Fixture.clusters(["a", "b"])
            await server.cache.setSnapshot(try XDSSnapshot(resources), forNode: "node-1")
            let stream = try openDelta(port: port)
            var request = deltaRequest(XDSTypeURL.cluster, subscribe: ["*"])
            request.initialResourceVersions = ["a": resources[0].version, "b": "stale-version", "gone": "v1"]
            stream.send(request)
            let response = try await stream.next()
            #expect(response.resources.map(\.name) == ["b"])
            #expect(response.removedResources == ["gone"])
            await stream.close()
        }
    }

    @Test("named subscribe and unsubscribe; no removal is sent for names the client dropped")
    func namedSubscribeUnsubscribe() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b", "c"])), forNode: "node-1")
            let stream = try openDelta(port: port)
            stream.send(deltaRequest(XDSTypeURL.cluster, subscribe: ["a", "b"]))
            let first = try await stream.next()
            #expect(first.resources.map(\.name) == ["a", "b"])
            stream.send(deltaRequest(XDSTypeURL.cluster, subscribe: ["c"], unsubscribe: ["b"], nonce: first.nonce))
            let second = try await stream.next()
            #expect(second.resources.map(\.name) == ["c"])
            #expect(second.removedResources.isEmpty)
            stream.send(deltaRequest(XDSTypeURL.cluster, nonce: second.nonce))

            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["c"])), forNode: "node-1")
            let third = try await stream.next()
            #expect(third.resources.isEmpty)
            #expect(third.removedResources == ["a"], "b was unsubscribed, so only a is removed")
            await stream.close()
        }
    }

    @Test("a NACK parks the rejected versions until the next snapshot")
    func nackParks() async throws {
        try await withXDSServer { server, port in
            let snapshot = try XDSSnapshot(Fixture.clusters(["a"]) + [Fixture.resource("l", Fixture.apiListener("l", inlineCluster: "a"))])
            await server.cache.setSnapshot(snapshot, forNode: "node-1")
            let stream = try openDelta(port: port)
            stream.send(deltaRequest(XDSTypeURL.cluster, subscribe: ["*"]))
            let rejected = try await stream.next()
            var nack = deltaRequest(XDSTypeURL.cluster, nonce: rejected.nonce)
            nack.errorDetail.code = 3
            nack.errorDetail.message = "bad cluster"
            stream.send(nack)
            // Barrier: had the rejected cluster been resent, it would arrive before this answer.
            stream.send(deltaRequest(XDSTypeURL.listener, subscribe: ["l"]))
            let barrier = try await stream.next()
            #expect(barrier.typeURL == XDSTypeURL.listener, "the NACKed cluster was resent")
            #expect(server.counters.snapshot().nacks == 1)
            // A new snapshot (same content) unparks "a": the client still lacks it.
            await server.cache.setSnapshot(snapshot, forNode: "node-1")
            let next = try await stream.next()
            #expect(next.typeURL == XDSTypeURL.cluster)
            #expect(next.resources.map(\.name) == ["a"])
            await stream.close()
        }
    }

    @Test("10,000 resources arrive in one delta response")
    func largeSnapshot() async throws {
        try await withXDSServer { server, port in
            let names = (0..<10_000).map { "cluster-\($0)" }
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(names)), forNode: "node-1")
            let stream = try openDelta(port: port)
            stream.send(deltaRequest(XDSTypeURL.cluster, subscribe: ["*"]))
            let response = try await stream.next()
            #expect(Set(response.resources.map(\.name)) == Set(names))
            await stream.close()
        }
    }
}

@Suite("XDSSnapshot validation")
struct SnapshotTests {
    @Test("changes(to:) names new and changed resources and removed keys, and nothing unchanged")
    func changes() throws {
        let before = try XDSSnapshot(Fixture.clusters(["a", "b", "c"]))
        let changedB = try Fixture.resource("b", Fixture.cluster("b", timeoutSeconds: 9))
        let after = try XDSSnapshot(Fixture.clusters(["a", "d"]) + [changedB])
        let (upserts, removals) = before.changes(to: after)
        #expect(Set(upserts.map(\.name)) == ["b", "d"])
        #expect(removals == [XDSResourceKey(typeURL: XDSTypeURL.cluster, name: "c")])
        #expect(try before.updating(upserting: upserts, removing: removals) == after)
        #expect(after.changes(to: after).upserts.isEmpty)
    }

    @Test("duplicate names are rejected with the offending name")
    func duplicate() throws {
        let resources = try Fixture.clusters(["a", "a"])
        #expect(throws: XDSServerError.duplicateResource(typeURL: XDSTypeURL.cluster, name: "a")) {
            try XDSSnapshot(resources)
        }
    }

    @Test("a resource filed under another type is rejected")
    func typeMismatch() throws {
        let resources = try Fixture.clusters(["a"])
        #expect(throws: XDSServerError.typeMismatch(expected: XDSTypeURL.listener, actual: XDSTypeURL.cluster, name: "a")) {
            try XDSSnapshot(byType: [XDSTypeURL.listener: resources])
        }
    }

    @Test("an empty name is rejected")
    func emptyName() throws {
        let resources = try Fixture.clusters([""])
        #expect(throws: XDSServerError.emptyName(typeURL: XDSTypeURL.cluster)) { try XDSSnapshot(resources) }
    }

    @Test("versions follow content, not identity")
    func contentVersions() throws {
        let a1 = try Fixture.resource("a", Fixture.cluster("a"))
        let a2 = try Fixture.resource("a", Fixture.cluster("a"))
        let a3 = try Fixture.resource("a", Fixture.cluster("a", timeoutSeconds: 2))
        #expect(a1.version == a2.version)
        #expect(a1.version != a3.version)
        #expect(XDSSnapshot.version(of: [a1]) == XDSSnapshot.version(of: [a2]))
    }

    @Test("push order puts CDS, EDS, LDS, RDS first")
    func pushOrder() {
        let sorted = XDSTypeURL.sortedForPush([XDSTypeURL.address, XDSTypeURL.routeConfiguration, XDSTypeURL.listener, XDSTypeURL.cluster, XDSTypeURL.clusterLoadAssignment])
        #expect(sorted == [XDSTypeURL.cluster, XDSTypeURL.clusterLoadAssignment, XDSTypeURL.listener, XDSTypeURL.routeConfiguration, XDSTypeURL.address])
    }
}
