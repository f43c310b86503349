import Foundation
import GRPCCore
import IdentityServices
import MeshControlPlane
import MeshIdentity
import MeshTestSupport
import NIOCore
import NIOPosix
import Testing

/// The ztunnel example binary built with the package (`swift build --build-tests` builds it).
private let ztunnelPath = ProcessInfo.processInfo.environment["ZTUNNEL"] ?? Interop.packageRoot + "/.build/debug/ztunnel"

@Suite("ztunnel with per-workload identities from the control plane", .serialized)
struct ZtunnelIdentityTests {
    static func manifests(echoPort: Int, withClient: Bool = true) -> [(file: String, text: String)] {
        var files = [("cluster.yaml", Manifests.cluster + """

        ---
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: other, namespace: demo}
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: echo-from-client, namespace: demo}
        spec:
          selector: {matchLabels: {app: echo}}
          action: ALLOW
          rules: [{from: [{source: {principals: ["cluster.local/ns/demo/sa/client"]}}]}]
        """),
        ("echo.yaml", Manifests.pod("echo-2", node: "node-b", ip: "127.0.20.2", port: echoPort)),
        ("intruder.yaml", Manifests.pod("intruder", node: "node-a", account: "other", labels: ["app": "intruder"], ip: "127.0.20.3"))]
        if withClient {
            files.append(("client.yaml", Manifests.pod("client", node: "node-a", account: "client", labels: ["app": "client"], ip: "127.0.20.1")))
        }
        return files
    }

    @Test("each tunnel presents the source pod's own SVID and expects the destination pod's; certificates are prefetched once per local identity and dropped when the pod leaves",
          .enabled(if: FileManager.default.isExecutableFile(atPath: ztunnelPath), "ztunnel not built at \(ztunnelPath)"))
    func perWorkloadIdentity() async throws {
        let echo = try await EchoServer.start(host: "127.0.20.2")
        defer { Task { await echo.close() } }
        let dir = try Manifests.directory(Self.manifests(echoPort: echo.port))
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("ztunnel-identity-\(UUID().uuidString)")
        defer {
            try? FileManager.default.removeItem(at: dir)
            try? FileManager.default.removeItem(at: work)
        }
        let ca = CADirectory(path: work.appendingPathComponent("ca").path)
        let authority = try ca.create(trustDomain: TrustDomain("cluster.local"))
        for node in ["node-a", "node-b"] {
            try ca.writeCredential(id: NodeCredential.identity(node: node, trustDomain: "cluster.local"), ttl: 3600, to: work.appendingPathComponent(node).path)
        }
        try await ControlPlaneHarness.run(directory: dir, authority: authority) { harness in
            func ztunnel(_ node: String, hbone: String) throws -> PeerProcess {
                try PeerProcess(ztunnelPath, [
                    "--node", node, "--node-credential", work.appendingPathComponent(node).path,
                    "--xds-address", "127.0.0.1:\(harness.port)", "--ca-address", "127.0.0.1:\(harness.port)",
                    "--hbone-listen", "\(hbone):15008", "--socks5", "127.0.0.1:0", "--readiness", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0",
                ])
            }
            let a = try ztunnel("node-a", hbone: "127.0.20.1")
            defer { a.stop() }
            let b = try ztunnel("node-b", hbone: "127.0.20.2")
            defer { b.stop() }
            #expect(await a.waitFor("ztunnel ready"), "\(a.text)")
            #expect(await b.waitFor("ztunnel ready"), "\(b.text)")
            let socksPort = try #require(a.loggedPort("socks5"), "\(a.text)")
            #expect(await eventually { harness.server.connectedClients().filter { $0.types.values.contains { $0.synced } }.count == 2 })
            // No connection yet, but each ztunnel prefetches its local workloads' certificates in the background,
            // one CSR per identity: node-a's client and other accounts, node-b's echo.
            #expect(await eventually { harness.caCounters.snapshot().issued == 3 }, "\(harness.caCounters.snapshot())")

            let ok = try await socks5Connect(socksPort: socksPort, host: "127.0.20.2", port: echo.port, payload: "per-workload", from: "127.0.20.1")
            #expect(ok.stdout == "reply 0\nper-workload\n", "\(ok.combined)\n\(a.text)\n\(b.text)")
            // The destination saw the client pod's identity, not the node's; the source verified the echo pod's.
            #expect(await b.waitFor("src.identity=spiffe://cluster.local/ns/demo/sa/client"), "\(b.text)")
            #expect(await a.waitFor("dst.identity=spiffe://cluster.local/ns/demo/sa/echo"), "\(a.text)")
            #expect(!b.text.contains("identity=spiffe://cluster.local/node/"))
            #expect(harness.caCounters.snapshot().issued == 3, "the tunnel used the prefetched certificates")

            // Another pod of node-a, with another service account: its own certificate, denied by policy.
            let denied = try await socks5Connect(socksPort: socksPort, host: "127.0.20.2", port: echo.port, payload: "x", from: "127.0.20.3")
            #expect(denied.stdout.hasPrefix("reply 2"), "\(denied.combined)\n\(a.text)")
            #expect(harness.caCounters.snapshot().issued == 3, "its certificate was prefetched too")
            // A source that is no workload of node-a gets no identity, and no tunnel.
            let stranger = try await socks5Connect(socksPort: socksPort, host: "127.0.20.2", port: echo.port, payload: "x", from: "127.0.0.1")
            #expect(stranger.stdout.hasPrefix("reply 2"), "\(stranger.combined)")

            // The client pod leaves the mesh: node-a drops its certificate.
            try harness.remove("client.yaml")
            #expect(await a.waitFor("workload certificate dropped"), "\(a.text)")
            #expect(a.text.contains("identity=spiffe://cluster.local/ns/demo/sa/client"))
            // And node-a may not obtain it any more (the CA's impersonation check).
            let credential = try X509SVID(chainFile: work.appendingPathComponent("node-a/svid.pem").path,
                                          privateKeyFile: work.appendingPathComponent("node-a/svid.key").path)
            let security = try SPIFFEGRPCSecurity.client(svids: SVIDSource(svid: credential), bundles: TrustBundleStore(authority.trustBundle),
                                                         authorizer: .exactly(ControlPlaneHarness.serverID))
            let client = try SPIFFEID("spiffe://cluster.local/ns/demo/sa/client")
            let again = IstioCAClient(host: "127.0.0.1", port: harness.port, identity: credential.id, impersonate: client, transportSecurity: security)
            await #expect(throws: RPCError.self) { _ = try await again.fetchSVID() }
            #expect(harness.caCounters.snapshot().impersonationRefusals == 1)
        }
    }

    @Test("the node credential renews itself at the CA at half its lifetime",
          .enabled(if: FileManager.default.isExecutableFile(atPath: ztunnelPath), "ztunnel not built at \(ztunnelPath)"))
    func nodeCredentialRenewal() async throws {
        let dir = try Manifests.directory()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("ztunnel-renewal-\(UUID().uuidString)")
        defer {
            try? FileManager.default.removeItem(at: dir)
            try? FileManager.default.removeItem(at: work)
        }
        let ca = CADirectory(path: work.appendingPathComponent("ca").path)
        let authority = try ca.create(trustDomain: TrustDomain("cluster.local"))
        // A credential this short is past half its life at once: the ztunnel renews it right away.
        try ca.writeCredential(id: NodeCredential.identity(node: "node-a", trustDomain: "cluster.local"), ttl: 4, to: work.appendingPathComponent("node-a").path)
        try await ControlPlaneHarness.run(directory: dir, authority: authority) { harness in
            let a = try PeerProcess(ztunnelPath, [
                "--node", "node-a", "--node-credential", work.appendingPathComponent("node-a").path,
                "--xds-address", "127.0.0.1:\(harness.port)", "--ca-address", "127.0.0.1:\(harness.port)",
                "--hbone-listen", "127.0.20.9:15008", "--socks5", "127.0.0.1:0", "--readiness", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0",
            ])
            defer { a.stop() }
            #expect(await a.waitFor("ztunnel ready"), "\(a.text)")
            #expect(await eventually { harness.caCounters.snapshot().issued >= 1 }, "\(a.text)")
            #expect(await eventually { a.text.components(separatedBy: "spiffe_id=spiffe://cluster.local/node/node-a").count - 1 >= 2 }, "\(a.text)")
        }
    }
}

/// A TCP echo server on `host` (port 0) that echoes until the client half-closes.
private final class EchoServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) { self.channel = channel }

    static func start(host: String) async throws -> EchoServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(host: host, port: 0).get()
        return EchoServer(channel: channel)
    }

    func close() async { try? await channel.close() }
}

private final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
        }
    }
}
