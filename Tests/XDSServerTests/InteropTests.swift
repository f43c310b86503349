import Foundation
import MeshProto
import SwiftProtobuf
import Testing
@testable import XDSServer
import MeshTestSupport

/// Peers this project did not write: grpcio's own xDS client, and an ADS
/// client built on Envoy's generated types (xds-protos).
@Suite("XDSServer interop with grpcio and xds-protos", .serialized)
struct InteropTests {
    static let grpcReady = PythonPeers.available(["grpc"])
    static let xdsProtosReady = PythonPeers.available(["grpc", "envoy.service.discovery.v3.ads_pb2_grpc"])

    /// The resources grpcio needs to resolve `xds:///<target>` to `backendPort`.
    static func proxylessSnapshot(target: String, backendPort: UInt32, inlineRoute: Bool) throws -> XDSSnapshot {
        var resources = [
            try Fixture.resource("echo-cluster", Fixture.cluster("echo-cluster", edsService: "echo-endpoints")),
            try Fixture.resource("echo-endpoints", Fixture.endpoints("echo-endpoints", port: backendPort)),
        ]
        if inlineRoute {
            resources.append(try Fixture.resource(target, Fixture.apiListener(target, inlineCluster: "echo-cluster")))
        } else {
            resources.append(try Fixture.resource(target, Fixture.apiListener(target, rds: "echo-routes")))
            resources.append(try Fixture.resource("echo-routes", Fixture.route("echo-routes", cluster: "echo-cluster")))
        }
        return try XDSSnapshot(resources)
    }

    @Test(
        "grpcio's xDS client resolves xds:/// through our LDS, RDS, CDS and EDS and calls the backend",
        .enabled(if: grpcReady, "needs .venv with grpcio (Tests/Interop/requirements.txt)"),
        arguments: [false, true]
    )
    func proxylessGRPC(inlineRoute: Bool) async throws {
        try await withProxylessPeer { server, peer, target, backendPort in
            await server.cache.setSnapshot(try Self.proxylessSnapshot(target: target, backendPort: backendPort, inlineRoute: inlineRoute), forNode: "grpc-node")
            peer.send("go")
            let result = try await peer.line(startingWith: "RESPONSE ", guardSeconds: 90)
            #expect(result == "RESPONSE hello swift-mesh", "\(peer.transcript)")
            // grpcio ACKs each type; the call may finish before the last ACK arrives (bounded wait).
            let expectedAcks = inlineRoute ? 3 : 4
            _ = await eventually { server.counters.snapshot().acks >= expectedAcks }
            let counters = server.counters.snapshot()
            #expect(counters.nacks == 0, "grpcio rejected a resource: \(peer.transcript)")
            #expect(counters.acks >= expectedAcks)
        }
    }

    @Test(
        "grpcio NACKs a cluster it cannot use; the version stays parked and a fixed snapshot heals the channel",
        .enabled(if: grpcReady, "needs .venv with grpcio (Tests/Interop/requirements.txt)")
    )
    func proxylessNackThenFix() async throws {
        try await withProxylessPeer { server, peer, target, backendPort in
            // A cluster with an EDS config that is neither ADS nor self: grpcio must reject it.
            var broken = Fixture.cluster("echo-cluster", edsService: "echo-endpoints")
            broken.edsClusterConfig.edsConfig.apiConfigSource.apiType = .rest
            let bad = try XDSSnapshot([
                try Fixture.resource("echo-cluster", broken),
                try Fixture.resource("echo-endpoints", Fixture.endpoints("echo-endpoints", port: backendPort)),
                try Fixture.resource(target, Fixture.apiListener(target, inlineCluster: "echo-cluster")),
            ])
            await server.cache.setSnapshot(bad, forNode: "grpc-node")
            peer.send("go")
            for _ in 0..<6000 where server.counters.snapshot().nacks == 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
            let afterNack = server.counters.snapshot()
            #expect(afterNack.nacks == 1, "\(peer.transcript)")
            await server.cache.setSnapshot(try Self.proxylessSnapshot(target: target, backendPort: backendPort, inlineRoute: true), forNode: "grpc-node")
            let result = try await peer.line(startingWith: "RESPONSE ", guardSeconds: 90)
            #expect(result == "RESPONSE hello swift-mesh", "\(peer.transcript)")
            #expect(server.counters.snapshot().nacks == 1, "the rejected cluster was resent")
        }
    }

    @Test(
        "an xds-protos ADS client decodes our SotW responses with Envoy's own types",
        .enabled(if: xdsProtosReady, "needs .venv with grpcio and xds-protos")
    )
    func xdsProtosSotW() async throws {
        try await withXDSServer { server, port in
            let snapshot = try XDSSnapshot(Fixture.clusters(["a", "b"]) + [
                Fixture.resource("e1", Fixture.endpoints("e1", port: 9001)),
                Fixture.resource("l1", Fixture.apiListener("l1", rds: "r1")),
                Fixture.resource("r1", Fixture.route("r1", cluster: "a")),
            ])
            await server.cache.setSnapshot(snapshot, forNode: "py-node")
            let peer = try LinePeer(script: "xds_ads_peer.py", arguments: ["127.0.0.1:\(port)", "py-node", "sotw"])
            defer { peer.stop() }
            _ = try await peer.line(startingWith: "READY")
            peer.send("req \(XDSTypeURL.cluster) *")
            peer.send("recv")
            let cds = try decode(try await peer.line(startingWith: "{"))
            #expect(cds["names"] as? [String] == ["a", "b"])
            peer.send("ack")
            peer.send("req \(XDSTypeURL.clusterLoadAssignment) e1")
            peer.send("recv")
            let eds = try decode(try await peer.line(startingWith: "{"))
            #expect(eds["names"] as? [String] == ["e1"])
            peer.send("req \(XDSTypeURL.listener) -")
            peer.send("recv")
            let lds = try decode(try await peer.line(startingWith: "{"))
            #expect(lds["names"] as? [String] == ["l1"])
            peer.send("nack listener rejected by test")
            peer.send("req \(XDSTypeURL.routeConfiguration) r1")
            peer.send("recv")
            let rds = try decode(try await peer.line(startingWith: "{"))
            #expect(rds["type"] as? String == XDSTypeURL.routeConfiguration, "the NACKed listener was resent")
            #expect(rds["names"] as? [String] == ["r1"])
            let counters = server.counters.snapshot()
            #expect(counters.acks == 1)
            #expect(counters.nacks == 1)
            peer.send("quit")
            _ = try await peer.line(startingWith: "BYE")
        }
    }

    @Test(
        "an xds-protos delta client gets versions, updates and removals",
        .enabled(if: xdsProtosReady, "needs .venv with grpcio and xds-protos")
    )
    func xdsProtosDelta() async throws {
        try await withXDSServer { server, port in
            let resources = try Fixture.clusters(["a", "b", "c"])
            await server.cache.setSnapshot(try XDSSnapshot(resources), forNode: "py-node")
            let peer = try LinePeer(script: "xds_ads_peer.py", arguments: ["127.0.0.1:\(port)", "py-node", "delta"])
            defer { peer.stop() }
            _ = try await peer.line(startingWith: "READY")
            peer.send("sub \(XDSTypeURL.cluster) * a=\(resources[0].version)")
            peer.send("recv")
            let first = try decode(try await peer.line(startingWith: "{"))
            #expect(first["resources"] as? [String: String] == ["b": resources[1].version, "c": resources[2].version])
            peer.send("dack")
            let changedB = try Fixture.resource("b", Fixture.cluster("b", timeoutSeconds: 7))
            // Wait for the ACK to be counted so the update below races nothing.
            _ = await eventually { server.counters.snapshot().acks > 0 }
            await server.cache.setSnapshot(try XDSSnapshot([resources[0], changedB]), forNode: "py-node")
            peer.send("recv")
            let second = try decode(try await peer.line(startingWith: "{"))
            #expect(second["resources"] as? [String: String] == ["b": changedB.version])
            #expect(second["removed"] as? [String] == ["c"])
            peer.send("quit")
            _ = try await peer.line(startingWith: "BYE")
        }
    }

    /// An XDSServer and grpcio's proxyless client (`xds_grpc_proxyless.py`) pointed at it
    /// for `xds:///echo.interop.test:8080`, with the port of the peer's own backend.
    private func withProxylessPeer(
        _ body: @Sendable (XDSServer, LinePeer, String, UInt32) async throws -> Void
    ) async throws {
        try await withXDSServer { server, port in
            let target = "echo.interop.test:8080"
            let workdir = FileManager.default.temporaryDirectory.appendingPathComponent("xds-interop-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: workdir) }
            let peer = try LinePeer(script: "xds_grpc_proxyless.py", arguments: [String(port), "grpc-node", target, workdir.path])
            defer { peer.stop() }
            let backend = try await peer.line(startingWith: "BACKEND ")
            let backendPort = try #require(UInt32(backend.dropFirst("BACKEND ".count)))
            try await body(server, peer, target, backendPort)
        }
    }

    private func decode(_ line: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        let dictionary = try #require(object as? [String: Any], "not a JSON object: \(line)")
        if let error = dictionary["error"] { Issue.record("peer error: \(error)") }
        return dictionary
    }
}
