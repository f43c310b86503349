import Foundation
import MeshControlPlane
import MeshProto
import MeshTestSupport
import PolicyEngine
import Testing
import XDSClient
import XDSServer

@Suite("Live: the manifest directory is watched; each change is one atomic push", .serialized)
struct LiveTests {
    static func uid(_ name: String) -> String { "Kubernetes//Pod/demo/\(name)" }

    @Test("edit, add and delete files while a SotW and a delta client watch: each sees exactly the change, in one push",
          arguments: [true, false])
    func liveChanges(inotify: Bool) async throws {
        let dir = try Manifests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try await ControlPlaneHarness.run(directory: dir, inotify: inotify) { harness in
            try await withADSClient(port: harness.port, variant: .stateOfTheWorld, node: "ztunnel~10.0.0.1~a~istio-system") { sotw in
                try await withADSClient(port: harness.port, variant: .delta, node: "ztunnel~10.0.0.2~b~istio-system") { delta in
                    let watches = [WatchReader(sotw.watch(.address)), WatchReader(delta.watch(.address))]
                    sotw.subscribe(.address, to: .wildcard)
                    delta.subscribe(.address, to: .wildcard)
                    for watch in watches { #expect(try await watch.next { $0.count == 5 }.names.contains(Self.uid("echo-1"))) }

                    // Add a pod in a new file.
                    try harness.write("added.yaml", Manifests.pod("echo-3", node: "node-b"))
                    for watch in watches {
                        let update = try await watch.next()
                        #expect(update.updated == [Self.uid("echo-3")] && update.removed.isEmpty && update.count == 6)
                    }

                    // Edit: relabel a pod (its canonical revision changes, nothing else).
                    try harness.write("added.yaml", Manifests.pod("echo-3", node: "node-b", labels: ["app": "echo", "version": "v3"]))
                    for watch in watches {
                        let update = try await watch.next()
                        #expect(update.updated == [Self.uid("echo-3")] && update.count == 6)
                        #expect(update[Self.uid("echo-3")]?.workload.canonicalRevision == "v3")
                    }

                    // A bad edit is refused and changes nothing; the next good edit is the next push.
                    let pushesBefore = harness.server.counters.snapshot().pushes
                    try harness.write("broken.yaml", Manifests.pod("echo-4", node: "node-nowhere"))
                    #expect(await eventually { await harness.controlPlane.lastRefusal?.contains("node-nowhere") == true })
                    let refusal = try #require(await harness.controlPlane.lastRefusal)
                    #expect(refusal.contains("broken.yaml") && refusal.contains("spec.nodeName"))
                    #expect(harness.server.counters.snapshot().pushes == pushesBefore)
                    let rendered = harness.controlPlane.metrics.render(clients: harness.server.connectedClients(), ca: harness.caCounters.snapshot())
                    #expect(rendered.contains("pilot_total_rejected_configs 1"))

                    // Delete the bad file and the added one: the next push removes echo-3 only.
                    try harness.remove("broken.yaml")
                    try harness.remove("added.yaml")
                    for watch in watches {
                        let update = try await watch.next()
                        #expect(update.removed == [Self.uid("echo-3")] && update.updated.isEmpty && update.count == 5)
                    }
                    #expect(await harness.controlPlane.lastRefusal == nil)
                }
            }
        }
    }

    @Test("debug/syncz lists each client with the version and nonce it acknowledged; metrics count clients, pushes and convergence")
    func syncStatus() async throws {
        let dir = try Manifests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try await ControlPlaneHarness.run(directory: dir) { harness in
            try await withADSClient(port: harness.port, variant: .delta, node: "ztunnel~10.0.0.2~b~istio-system") { client in
                let watch = WatchReader(client.watch(.address))
                client.subscribe(.address, to: .wildcard)
                _ = try await watch.next()
                #expect(await eventually { harness.server.connectedClients().first?.types[XDSTypeURL.address]?.synced == true })
                let status = try #require(harness.server.connectedClients().first)
                #expect(status.nodeID == "ztunnel~10.0.0.2~b~istio-system" && status.variant == "delta")
                let json = try JSONSerialization.jsonObject(with: Data(SyncStatus.json([status]).utf8)) as? [[String: Any]]
                let types = try #require(json?.first?["types"] as? [String: [String: Any]])
                let address = try #require(types[XDSTypeURL.address])
                #expect(address["acked_nonce"] as? String == address["sent_nonce"] as? String)
                #expect(address["synced"] as? Bool == true)
                let metrics = harness.controlPlane.metrics.render(clients: harness.server.connectedClients(), ca: harness.caCounters.snapshot())
                #expect(metrics.contains("pilot_xds{type=\"ztunnel\"} 1.0"))
                #expect(metrics.contains("pilot_xds_pushes{type=\"wds\"} 1"))
                #expect(metrics.contains("pilot_proxy_convergence_time_count 1"))
            }
        }
    }

    @Test("restart: a new control plane on the same manifests serves the same versions, so a reconnecting delta client receives nothing")
    func restart() async throws {
        let dir = try Manifests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try await ControlPlaneHarness.run(directory: dir) { harness in
            await harness.controlPlane.current?.snapshot
        }
        try await ControlPlaneHarness.run(directory: dir) { harness in
            let second = await harness.controlPlane.current?.snapshot
            let before = try #require(first), after = try #require(second)
            #expect(before.changes(to: after).upserts.isEmpty && before.changes(to: after).removals.isEmpty)
            for type in [XDSTypeURL.address, XDSTypeURL.cluster, XDSTypeURL.listener] {
                #expect(before.resources(ofType: type).mapValues(\.version) == after.resources(ofType: type).mapValues(\.version))
            }
        }
        // A delta client connected to the first control plane reconnects to its successor on the
        // same port with initial_resource_versions, and is sent nothing: the versions are the same.
        var configuration = ADSClient.Configuration(host: "127.0.0.1", port: 0, variant: .delta, node: XDSNode.named("ztunnel~10.0.0.3~c~istio-system"))
        configuration.backoff = ReconnectBackoff(initial: .milliseconds(10), maximum: .milliseconds(100))
        let port = try await ControlPlaneHarness.run(directory: dir) { $0.port }
        configuration.port = port
        let client = ADSClient(configuration: configuration)
        let watch = WatchReader(client.watch(.address))
        client.subscribe(.address, to: .wildcard)
        let running = Task { await client.run() }
        defer { client.shutdown() }
        try await ControlPlaneHarness.run(directory: dir, port: port) { harness in
            _ = try await watch.next { $0.count == 5 }
            #expect(await eventually { harness.server.connectedClients().first?.types[XDSTypeURL.address]?.synced == true })
        }
        #expect(await eventually { !client.counters.connected })
        try await ControlPlaneHarness.run(directory: dir, port: port) { harness in
            #expect(await eventually { client.counters.connected && harness.server.counters.snapshot().totalStreams == 1 })
            // Let the reconnected stream settle, then check nothing was pushed for Address.
            try await Task.sleep(for: .milliseconds(500))
            #expect(harness.server.connectedClients().first?.nodeID == "ztunnel~10.0.0.3~c~istio-system")
            #expect(harness.server.connectedClients().first?.types[XDSTypeURL.address]?.sentNonce ?? "" == "")
            // The stream is subscribed all the same: a change reaches it.
            try harness.write("added.yaml", Manifests.pod("echo-3", node: "node-b"))
            #expect(try await watch.next { $0.count == 6 }.updated == [Self.uid("echo-3")])
            try harness.remove("added.yaml")
        }
        client.shutdown()
        await running.value
    }
}
