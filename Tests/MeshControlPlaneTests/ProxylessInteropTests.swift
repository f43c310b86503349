import Foundation
import MeshControlPlane
import MeshTestSupport
import Testing

@Suite("Interop: grpcio's own xDS client resolves a Service defined by manifests", .serialized)
struct ProxylessInteropTests {
    @Test("xds:///echo.demo.svc.cluster.local:80 through LDS, RDS, CDS and EDS from the control plane, then an RPC to the backend pod",
          .enabled(if: PythonPeers.available(["grpc"]), "grpcio missing from the interop venv (run scripts/test)"))
    func proxylessRPC() async throws {
        let workdir = FileManager.default.temporaryDirectory.appendingPathComponent("proxyless-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: workdir) }
        // The backend pod runs on this host's loopback: the peer starts it and reports its port.
        let manifests = try Manifests.directory([("cluster.yaml", Manifests.cluster)])
        defer { try? FileManager.default.removeItem(at: manifests) }
        try await ControlPlaneHarness.run(directory: manifests) { harness in
            let target = "echo.demo.svc.cluster.local:80"
            let peer = try LinePeer(script: "xds_grpc_proxyless.py", arguments: [String(harness.port), "proxyless~127.0.0.1~client.demo~demo.svc.cluster.local", target, workdir.path])
            defer { peer.stop() }
            let backend = try await peer.line(startingWith: "BACKEND ")
            let port = try #require(Int(backend.dropFirst("BACKEND ".count)))
            try harness.write("echo.yaml", Manifests.pod("echo-1", node: "node-a", ip: "127.0.0.1", port: port) + """

            ---
            apiVersion: v1
            kind: Service
            metadata: {name: echo, namespace: demo}
            spec:
              selector: {app: echo}
              ports: [{name: grpc, port: 80, targetPort: http, appProtocol: grpc}]
            """)
            #expect(await eventually { await harness.controlPlane.current?.state.services.count == 1 })
            peer.send("go")
            let reply = try await peer.line(startingWith: "RESPONSE ", guardSeconds: 90)
            #expect(reply == "RESPONSE hello swift-mesh", "\(peer.transcript)")
            let metrics = harness.controlPlane.metrics.render(clients: [], ca: harness.caCounters.snapshot())
            for type in ["lds", "rds", "cds", "eds"] { #expect(metrics.contains("pilot_xds_pushes{type=\"\(type)\"}"), "no \(type) push") }
        }
    }
}
