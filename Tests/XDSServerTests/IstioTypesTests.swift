import Foundation
import MeshProto
import SwiftProtobuf
import MeshTestSupport
import Testing
@testable import XDSServer

/// Istio's ambient types as ztunnel consumes them: delta, wildcard, names by uid.
@Suite("XDSServer with Istio Address and Authorization")
struct IstioTypesTests {
    static func workload(_ uid: String, ip: [UInt8], serviceAccount: String = "default") -> Istio_Workload_Address {
        var workload = Istio_Workload_Workload()
        workload.uid = uid
        workload.name = uid
        workload.namespace = "default"
        workload.addresses = [Data(ip)]
        workload.serviceAccount = serviceAccount
        workload.tunnelProtocol = .hbone
        workload.services = ["default/echo.default.svc.cluster.local": Istio_Workload_PortList.with {
            $0.ports = [Istio_Workload_Port.with { $0.servicePort = 80; $0.targetPort = 8080 }]
        }]
        var address = Istio_Workload_Address()
        address.workload = workload
        return address
    }

    static func policy(_ name: String) -> Istio_Security_Authorization {
        var authorization = Istio_Security_Authorization()
        authorization.name = name
        authorization.namespace = "default"
        authorization.scope = .namespace
        authorization.action = .deny
        var match = Istio_Security_Match()
        match.destinationPorts = [9090]
        authorization.groups = [Istio_Security_Group.with { $0.rules = [Istio_Security_Rules.with { $0.matches = [match] }] }]
        return authorization
    }

    @Test("workloads and policies stream by uid; an incremental update sends one resource; a removal names it")
    func incrementalWorkloads() async throws {
        try await withXDSServer { server, port in
            let names = (1...50).map { "cluster1//v1/Pod/default/pod-\($0)" }
            let addresses = try names.enumerated().map { index, uid in
                try XDSResource(name: uid, message: Self.workload(uid, ip: [10, 0, 0, UInt8(index + 1)]))
            }
            let policy = try XDSResource(name: "default/deny-9090", message: Self.policy("deny-9090"))
            try await server.cache.updateSnapshot(forNode: "ztunnel", upserting: addresses + [policy])

            let stream = try openDelta(port: port)
            stream.send(deltaRequest(XDSTypeURL.address, subscribe: ["*"], node: "ztunnel"))
            stream.send(deltaRequest(XDSTypeURL.authorization, subscribe: ["*"], node: "ztunnel"))
            // Which answer comes first depends on when the node's snapshot reaches the stream.
            let answers = [try await stream.next(), try await stream.next()]
            let policies = try #require(answers.first { $0.typeURL == XDSTypeURL.authorization })
            let first = try #require(answers.first { $0.typeURL == XDSTypeURL.address })
            #expect(Set(first.resources.map(\.name)) == Set(names))
            let decoded = try Istio_Workload_Address(unpackingAny: first.resources[0].resource)
            #expect(decoded.workload.tunnelProtocol == .hbone)
            #expect(try Istio_Security_Authorization(unpackingAny: policies.resources[0].resource).groups.first?.rules.first?.matches.first?.destinationPorts == [9090])
            stream.send(deltaRequest(XDSTypeURL.address, nonce: first.nonce))
            stream.send(deltaRequest(XDSTypeURL.authorization, nonce: policies.nonce))

            let moved = try XDSResource(name: names[0], message: Self.workload(names[0], ip: [10, 0, 1, 1]))
            try await server.cache.updateSnapshot(
                forNode: "ztunnel",
                upserting: [moved],
                removing: [XDSResourceKey(typeURL: XDSTypeURL.address, name: names[1])]
            )
            let update = try await stream.next()
            #expect(update.typeURL == XDSTypeURL.address)
            #expect(update.resources.map(\.name) == [names[0]])
            #expect(update.resources.first?.version == moved.version)
            #expect(update.removedResources == [names[1]])
            await stream.close()
        }
    }

    @Test("an incremental update with a duplicate name is rejected and leaves the snapshot unchanged")
    func incrementalDuplicate() async throws {
        let cache = XDSSnapshotCache()
        let a = try XDSResource(name: "a", message: Self.policy("a"))
        try await cache.updateSnapshot(forNode: "n", upserting: [a])
        await #expect(throws: XDSServerError.duplicateResource(typeURL: XDSTypeURL.authorization, name: "b")) {
            try await cache.updateSnapshot(forNode: "n", upserting: [try XDSResource(name: "b", message: Self.policy("b")), try XDSResource(name: "b", message: Self.policy("b2"))])
        }
        #expect(await cache.snapshot(forNode: "n")?.resources(ofType: XDSTypeURL.authorization).keys.sorted() == ["a"])
    }

    @Test("fifty streams of one node all receive a snapshot change")
    func fanOut() async throws {
        try await withXDSServer { server, port in
            try await server.cache.updateSnapshot(forNode: "node-1", upserting: Fixture.clusters(["a"]))
            var streams: [ADSStream<DeltaRequest, DeltaResponse>] = []
            for _ in 0..<50 {
                let stream = try openDelta(port: port)
                stream.send(deltaRequest(XDSTypeURL.cluster, subscribe: ["*"]))
                #expect(try await stream.next().resources.map(\.name) == ["a"])
                streams.append(stream)
            }
            #expect(server.counters.snapshot().connectedStreams == 50)
            try await server.cache.updateSnapshot(forNode: "node-1", upserting: Fixture.clusters(["b"]))
            for stream in streams {
                #expect(try await stream.next().resources.map(\.name) == ["b"])
                await stream.close()
            }
        }
    }
}
