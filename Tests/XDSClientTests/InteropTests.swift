import Foundation
import MeshProto
import MeshTestSupport
import Testing
import XDSClient

/// A peer this project did not write: an ADS server on Envoy's generated
/// types (xds-protos) and grpcio (Tests/Interop/xds_ads_server.py).
@Suite("ADSClient interop with an xds-protos grpcio ADS server", .serialized)
struct InteropTests {
    static let ready = PythonPeers.available(["grpc", "envoy.service.discovery.v3.ads_pb2_grpc"])

    @Test(
        "SotW and delta: ACKs, NACKs with error_detail for garbage and duplicates, updates, removal, reconnect with what the client has",
        .enabled(if: ready, "needs .venv with grpcio and xds-protos (Tests/Interop/requirements.txt)"),
        arguments: bothVariants
    )
    func xdsProtosServer(variant: ADSClient.Variant) async throws {
        let peer = try LinePeer(script: "xds_ads_server.py", arguments: ["--port", "0"])
        defer { peer.stop() }
        let listening = try await peer.line(startingWith: "LISTENING ")
        let port = try #require(Int(listening.dropFirst("LISTENING ".count)))
        let kind = variant == .delta ? "delta" : "sotw"
        for command in ["cluster a", "cluster b 3", "listener l1"] {
            peer.send(command)
            _ = try await peer.line(startingWith: "OK \(command)")
        }

        try await withADSClient(port: port, variant: variant, node: "swift-node") { client in
            client.subscribe(.cluster, to: .wildcard)
            client.subscribe(.listener, to: .names(["l1"]))
            let clusters = WatchReader(client.watch(.cluster))
            let listeners = WatchReader(client.watch(.listener))
            #expect(try await clusters.next().names == ["a", "b"])
            #expect(try await listeners.next().names == ["l1"])
            #expect(try await peer.line(startingWith: "STREAM ") == "STREAM \(kind) node=swift-node")
            _ = try await peer.line(startingWith: "ACK Cluster")
            #expect(client.current(.cluster)?["b"]?.connectTimeout.seconds == 3)

            // Undecodable bytes: NACKed with a reason the server logs; the old state stays.
            peer.send("garbage Cluster")
            let garbageNACK = try await peer.line(startingWith: "NACK Cluster")
            #expect(garbageNACK.contains("cannot be decoded"), "\(garbageNACK)")
            // Two Clusters with one name in one response: NACKed too.
            peer.send("duplicate cluster a")
            let duplicateNACK = try await peer.line(startingWith: "NACK Cluster")
            #expect(duplicateNACK.contains("\"a\" twice"), "\(duplicateNACK)")
            #expect(client.current(.cluster)?.names == ["a", "b"])
            #expect(client.counters.nacks == 2)

            // A good change after the NACKs is applied; a removal is reported.
            peer.send("cluster c")
            #expect(try await clusters.next { $0.names.contains("c") }.updated == ["c"])
            peer.send("remove cluster a")
            #expect(try await clusters.next { !$0.removed.isEmpty }.removed == ["a"])

            // The server ends the stream: the client reconnects and tells it what it holds.
            peer.send("close")
            _ = try await peer.line(startingWith: "OK close")
            #expect(try await peer.line(startingWith: "STREAM ") == "STREAM \(kind) node=swift-node")
            let resumed = try await peer.line(startingWith: "REQUEST \(kind) type=Cluster")
            switch variant {
            case .delta:
                let held = try #require(client.current(.cluster))
                let initial = held.names.sorted().map { "\($0):\(held.version(of: $0) ?? "")" }.joined(separator: ",")
                #expect(resumed.contains("initial=\(initial)"), "\(resumed)")
                #expect(resumed.contains("subscribe=*"), "\(resumed)")
            case .stateOfTheWorld:
                let version = try #require(client.current(.cluster)?.version)
                #expect(resumed.contains("version=\(version) "), "\(resumed)")
                #expect(resumed.contains("nonce=- "), "\(resumed)")
            }
            #expect(client.current(.cluster)?.names == ["b", "c"], "state kept across the reconnect")
            peer.send("cluster d")
            #expect(try await clusters.next { $0.names.contains("d") }.names == ["b", "c", "d"])
        }
        peer.send("quit")
    }
}
