import Foundation
import GRPCCore
import MeshProto
import SwiftProtobuf
import MeshTestSupport
import Testing
@testable import XDSServer

@Suite("XDSServer state of the world over gRPC")
struct SotWTests {
    @Test("wildcard CDS gets every cluster; an ACK gets no resend")
    func wildcardAndAck() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b"])), forNode: "node-1")
            let stream = try openSotW(port: port)
            stream.send(sotwRequest(XDSTypeURL.cluster, names: ["*"]))
            let first = try await stream.next()
            #expect(first.typeURL == XDSTypeURL.cluster)
            #expect(try clusterNames(first) == ["a", "b"])
            #expect(!first.versionInfo.isEmpty && !first.nonce.isEmpty)
            stream.send(sotwRequest(XDSTypeURL.cluster, names: ["*"], after: first))
            // Barrier: a request for another type; a resend of CDS would arrive before its answer.
            stream.send(sotwRequest(XDSTypeURL.listener))
            let barrier = try await stream.next()
            #expect(barrier.typeURL == XDSTypeURL.listener)
            #expect(barrier.resources.isEmpty)
            #expect(server.counters.snapshot().acks == 1)
            await stream.close()
        }
    }

    @Test("legacy wildcard (no names) gets everything, and removal drops a cluster from the next set")
    func legacyWildcardAndRemoval() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b"])), forNode: "node-1")
            let stream = try openSotW(port: port)
            stream.send(sotwRequest(XDSTypeURL.cluster))
            let first = try await stream.next()
            #expect(try clusterNames(first) == ["a", "b"])
            stream.send(sotwRequest(XDSTypeURL.cluster, after: first))
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a"])), forNode: "node-1")
            let second = try await stream.next()
            #expect(try clusterNames(second) == ["a"])
            #expect(second.versionInfo != first.versionInfo)
            await stream.close()
        }
    }

    @Test("named subscriptions get only their names and follow subscription changes")
    func namedSubscriptions() async throws {
        try await withXDSServer { server, port in
            let snapshot = try XDSSnapshot([
                Fixture.resource("e1", Fixture.endpoints("e1", port: 1001)),
                Fixture.resource("e2", Fixture.endpoints("e2", port: 1002)),
                Fixture.resource("e3", Fixture.endpoints("e3", port: 1003)),
            ])
            await server.cache.setSnapshot(snapshot, forNode: "node-1")
            let stream = try openSotW(port: port)
            stream.send(sotwRequest(XDSTypeURL.clusterLoadAssignment, names: ["e1"]))
            let first = try await stream.next()
            let firstNames = try first.resources.map { try Envoy_Config_Endpoint_V3_ClusterLoadAssignment(unpackingAny: $0).clusterName }
            #expect(firstNames == ["e1"])
            stream.send(sotwRequest(XDSTypeURL.clusterLoadAssignment, names: ["e1", "e3", "missing"], after: first))
            let second = try await stream.next()
            let secondNames = try second.resources.map { try Envoy_Config_Endpoint_V3_ClusterLoadAssignment(unpackingAny: $0).clusterName }
            #expect(secondNames == ["e1", "e3"])
            await stream.close()
        }
    }

    @Test("a NACKed version is parked, not resent, until a new snapshot arrives")
    func nackIsParked() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a"])), forNode: "node-1")
            let stream = try openSotW(port: port)
            stream.send(sotwRequest(XDSTypeURL.cluster, names: ["*"]))
            let rejected = try await stream.next()
            var nack = sotwRequest(XDSTypeURL.cluster, names: ["*"], after: rejected)
            nack.versionInfo = ""
            nack.errorDetail.code = 3
            nack.errorDetail.message = "cluster a: unsupported"
            stream.send(nack)
            stream.send(sotwRequest(XDSTypeURL.listener))
            let barrier = try await stream.next()
            #expect(barrier.typeURL == XDSTypeURL.listener, "the NACKed CDS version was resent")
            #expect(server.counters.snapshot().nacks == 1)

            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a", "b"])), forNode: "node-1")
            let fixed = try await stream.next()
            #expect(fixed.typeURL == XDSTypeURL.cluster)
            #expect(try clusterNames(fixed) == ["a", "b"])
            await stream.close()
        }
    }

    @Test("a snapshot change pushes CDS, then EDS, then LDS, then RDS")
    func pushOrder() async throws {
        try await withXDSServer { server, port in
            func snapshot(_ generation: UInt32) throws -> XDSSnapshot {
                try XDSSnapshot([
                    Fixture.resource("r", Fixture.route("r", cluster: "c\(generation)")),
                    Fixture.resource("l", Fixture.apiListener("l", rds: "r\(generation)")),
                    Fixture.resource("e", Fixture.endpoints("e", port: 1000 + generation)),
                    Fixture.resource("c", Fixture.cluster("c", timeoutSeconds: Int64(generation))),
                ])
            }
            await server.cache.setSnapshot(try snapshot(1), forNode: "node-1")
            let stream = try openSotW(port: port)
            let subscriptions: [(String, [String])] = [
                (XDSTypeURL.routeConfiguration, ["r"]), (XDSTypeURL.listener, []),
                (XDSTypeURL.clusterLoadAssignment, ["e"]), (XDSTypeURL.cluster, []),
            ]
            for (type, names) in subscriptions {
                stream.send(sotwRequest(type, names: names))
                let response = try await stream.next()
                #expect(response.typeURL == type)
                stream.send(sotwRequest(type, names: names, after: response))
            }
            await server.cache.setSnapshot(try snapshot(2), forNode: "node-1")
            var order: [String] = []
            for _ in 0..<4 { order.append(try await stream.next().typeURL) }
            #expect(order == [XDSTypeURL.cluster, XDSTypeURL.clusterLoadAssignment, XDSTypeURL.listener, XDSTypeURL.routeConfiguration])
            await stream.close()
        }
    }

    @Test("a stale nonce is ignored and counted")
    func staleNonce() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a"])), forNode: "node-1")
            let stream = try openSotW(port: port)
            stream.send(sotwRequest(XDSTypeURL.cluster))
            let first = try await stream.next()
            var stale = sotwRequest(XDSTypeURL.cluster, names: ["a"], after: first)
            stale.responseNonce = "not-a-nonce-we-sent"
            stream.send(stale)
            stream.send(sotwRequest(XDSTypeURL.listener))
            #expect(try await stream.next().typeURL == XDSTypeURL.listener)
            #expect(server.counters.snapshot().staleRequests == 1)
            await stream.close()
        }
    }

    @Test("a request without type_url ends the stream with InvalidArgument; the server keeps serving")
    func missingTypeURL() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a"])), forNode: "node-1")
            let bad = try openSotW(port: port)
            bad.send(sotwRequest(""))
            let error = await bad.outcome()
            #expect((error as? RPCError)?.code == .invalidArgument, "\(String(describing: error))")
            let good = try openSotW(port: port)
            good.send(sotwRequest(XDSTypeURL.cluster))
            #expect(try clusterNames(try await good.next()) == ["a"])
            await good.close()
        }
    }

    @Test("shutdown ends open streams with unavailable and run() returns")
    func shutdownEndsStreams() async throws {
        let server = XDSServer(cache: XDSSnapshotCache(), configuration: .init(host: "127.0.0.1", port: 0))
        let serving = Task { try await server.run() }
        let port = try await server.listeningPort()
        await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a"])), forNode: "node-1")
        let sotw = try openSotW(port: port)
        sotw.send(sotwRequest(XDSTypeURL.cluster))
        _ = try await sotw.next()
        let delta = try openDelta(port: port)
        delta.send(deltaRequest(XDSTypeURL.cluster, subscribe: ["*"]))
        _ = try await delta.next()

        server.shutdown()
        #expect((await sotw.outcome() as? RPCError)?.code == .unavailable)
        #expect((await delta.outcome() as? RPCError)?.code == .unavailable)
        try await serving.value
        #expect(server.counters.snapshot().connectedStreams == 0)
    }

    @Test("10,000 resources arrive in one response")
    func largeSnapshot() async throws {
        try await withXDSServer { server, port in
            let names = (0..<10_000).map { "cluster-\($0)" }
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(names)), forNode: "node-1")
            let stream = try openSotW(port: port)
            stream.send(sotwRequest(XDSTypeURL.cluster, names: ["*"]))
            let response = try await stream.next()
            #expect(response.resources.count == 10_000)
            #expect(Set(try clusterNames(response)) == Set(names))
            await stream.close()
        }
    }

    @Test("the stream gauge follows open and closed streams, including aborted ones")
    func connectedCounter() async throws {
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(XDSSnapshot(), forNode: "node-1")
            let stream = try openSotW(port: port)
            stream.send(sotwRequest(XDSTypeURL.cluster))
            _ = try await stream.next()
            #expect(server.counters.snapshot().connectedStreams == 1)
            await stream.abort()
            #expect(await eventually { server.counters.snapshot().connectedStreams == 0 })
            #expect(server.counters.snapshot().totalStreams == 1)
        }
    }
}
