import Foundation
import MeshControlPlane
import MeshTestSupport
import Testing
import XDSClient
import XDSServer

private let binary = Interop.packageRoot + "/.build/debug/mesh-controlplane"

@Suite("mesh-controlplane binary", .serialized)
struct BinaryTests {
    @Test("serves manifests over plaintext ADS; /ready and /metrics answer; SIGTERM ends streams with UNAVAILABLE and exits 0",
          .enabled(if: FileManager.default.isExecutableFile(atPath: binary), "mesh-controlplane not built at \(binary)"))
    func serveAndDrain() async throws {
        let manifests = try Manifests.directory()
        let ca = FileManager.default.temporaryDirectory.appendingPathComponent("cp-ca-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(at: manifests)
            try? FileManager.default.removeItem(atPath: ca)
        }
        let initialized = try Interop.runBlocking(binary, ["ca", "init", "--dir", ca])
        #expect(initialized.status == 0, "\(initialized.combined)")
        let again = try Interop.runBlocking(binary, ["ca", "init", "--dir", ca])
        #expect(again.status != 0 && again.combined.contains("--force"), "\(again.combined)")
        let server = try PeerProcess(binary, ["--manifests", manifests.path, "--ca-dir", ca, "--address", "127.0.0.1:0",
                                              "--plaintext-address", "127.0.0.1:0", "--monitoring-address", "127.0.0.1:0"])
        defer { server.stop() }
        #expect(await server.waitFor("mesh-controlplane serving"), "\(server.text)")
        let xdsPort = try #require(server.loggedPort("xds_plaintext"), "\(server.text)")
        let monitoringPort = try #require(server.loggedPort("monitoring"), "\(server.text)")
        let ready = try await Interop.run("/usr/bin/env", ["curl", "-fsS", "http://127.0.0.1:\(monitoringPort)/ready"])
        #expect(ready.stdout == "ready\n", "\(ready.combined)")

        var configuration = ADSClient.Configuration(host: "127.0.0.1", port: xdsPort, variant: .delta, node: XDSNode.named("ztunnel~1~a~b"))
        configuration.backoff = ReconnectBackoff(initial: .seconds(30), maximum: .seconds(30))
        let client = ADSClient(configuration: configuration)
        let watch = WatchReader(client.watch(.address))
        client.subscribe(.address, to: .wildcard)
        let running = Task { await client.run() }
        defer { client.shutdown() }
        #expect(try await watch.next().count == 5)
        let metrics = try await Interop.run("/usr/bin/env", ["curl", "-fsS", "http://127.0.0.1:\(monitoringPort)/metrics"])
        #expect(metrics.stdout.contains("pilot_xds{type=\"ztunnel\"} 1.0"), "\(metrics.combined)")
        let syncz = try await Interop.run("/usr/bin/env", ["curl", "-fsS", "http://127.0.0.1:\(monitoringPort)/debug/syncz"])
        #expect(syncz.stdout.contains("\"node\" : \"ztunnel~1~a~b\""), "\(syncz.combined)")

        server.signal(SIGTERM)
        #expect(await server.waitForExit() == 0, "\(server.text)")
        #expect(server.text.contains("draining: ending xDS streams") && server.text.contains("mesh-controlplane stopped"))
        #expect(await eventually { !client.counters.connected })
        // The client keeps what it had.
        #expect(client.current(.address)?.count == 5)
        client.shutdown()
        await running.value
    }

    @Test("refuses to start on manifests that are refused, naming the file and field",
          .enabled(if: FileManager.default.isExecutableFile(atPath: binary), "mesh-controlplane not built at \(binary)"))
    func refusesBadStart() async throws {
        let manifests = try Manifests.directory(Manifests.all + [("bad.yaml", Manifests.pod("x", node: "nowhere"))])
        let ca = FileManager.default.temporaryDirectory.appendingPathComponent("cp-ca-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(at: manifests)
            try? FileManager.default.removeItem(atPath: ca)
        }
        _ = try Interop.runBlocking(binary, ["ca", "init", "--dir", ca])
        let result = try Interop.runBlocking(binary, ["--manifests", manifests.path, "--ca-dir", ca, "--address", "127.0.0.1:0", "--monitoring-address", "127.0.0.1:0"])
        #expect(result.status != 0)
        #expect(result.combined.contains("bad.yaml") && result.combined.contains("spec.nodeName"), "\(result.combined)")
    }
}
