import Foundation
import HBONE
import Logging
import MeshTestSupport
import NIOCore
import NIOPosix
import NodeProxy
import Synchronization
import Testing
import XDSClient

/// An echo listener standing in for a workload; it counts the connections it accepted.
private final class WorkloadListener: Sendable {
    let channel: any Channel
    private let counter: AcceptCounter

    init(host: String) async throws {
        let counter = AcceptCounter()
        self.counter = counter
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { child in
                counter.increment()
                return child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(host: host, port: 0).get()
    }

    var accepted: Int { counter.value }
    var port: Int { channel.localAddress!.port! }
}

private final class AcceptCounter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

private final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.writeAndFlush(data, promise: nil) }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent { context.close(promise: nil) }
    }
}

/// Issue 16, part 5: an authenticated peer's CONNECT may only reach a workload of this node,
/// and with in-pod listeners only the pod whose listener it reached.
@Suite("Inbound HBONE: a CONNECT reaches only this node's workloads", .serialized)
struct InboundBoundaryTests {
    /// local-a (127.0.0.2) and local-b (127.0.0.4) on node-a; remote (127.0.0.3) on node-b.
    private func store() throws -> WorkloadStore {
        try WorkloadStore(WorkloadSnapshot(workloads: [
            Workload(uid: "local-a", name: "local-a", namespace: "default", workloadIPs: ["127.0.0.2"], node: "node-a"),
            Workload(uid: "local-b", name: "local-b", namespace: "default", workloadIPs: ["127.0.0.4"], node: "node-a"),
            Workload(uid: "remote", name: "remote", namespace: "default", workloadIPs: ["127.0.0.3"], node: "node-b"),
        ]))
    }

    /// A real HBONE server with `WorkloadInboundHandler` as node-a on `host` (`127.0.0.2` stands for
    /// local-a's own in-pod listener), and a CONNECT from Python's h2 with the client's SVID.
    private struct NodeA {
        let pki: ServerClientPKI
        let files: PEMFiles
        let server: HBONEServer
        let address: SocketAddress

        init(host: String, store: WorkloadStore) async throws {
            pki = try ServerClientPKI()
            files = try PEMFiles(pki: pki, ids: ["client": pki.clientID])
            server = HBONEServer(tls: try pki.tls(pki.serverID),
                                 handler: WorkloadInboundHandler(store: store, node: "node-a", logger: Logger(label: "inbound")),
                                 configuration: HBONEServerConfiguration(host: host, port: 0))
            address = try await server.start()
        }

        func connect(authority: String) async throws -> Interop.Output {
            try await Interop.run(try #require(Interop.python), [
                Interop.script("hbone_client.py"), "--connect", "\(address.ipAddress!):\(address.port!)",
                "--cert", files.cert("client"), "--key", files.key("client"), "--ca", files.ca,
                "--expect-id", pki.serverID.description, "--authority", authority,
            ])
        }

        func stop() async {
            await server.shutdown()
            files.remove()
        }
    }

    @Test("a CONNECT naming another node's workload is answered 503 and never forwarded; a local one is tunnelled (Python h2 client)",
          .enabled(if: Interop.python != nil, "needs the interop venv (.venv or MESH_INTEROP_PYTHON)"))
    func otherNodeRefused() async throws {
        let local = try await WorkloadListener(host: "127.0.0.2")
        let remote = try await WorkloadListener(host: "127.0.0.3")
        let node = try await NodeA(host: "127.0.0.1", store: store())

        let refused = try await node.connect(authority: "127.0.0.3:\(remote.port)")
        #expect(refused.stdout.contains("status 503"), "\(refused.combined)")
        #expect(remote.accepted == 0, "the CONNECT was forwarded to the other node's workload")

        let tunnelled = try await node.connect(authority: "127.0.0.2:\(local.port)")
        #expect(tunnelled.stdout.contains("status 200"), "\(tunnelled.combined)")
        #expect(tunnelled.stdout.contains("echo hello from python h2"), "\(tunnelled.combined)")
        #expect(local.accepted == 1)

        await node.stop()
        try await local.channel.close()
        try await remote.channel.close()
    }

    @Test("in-pod: a CONNECT that reached one pod's listener but names another pod of the node is denied 401 and never forwarded",
          .enabled(if: Interop.python != nil, "needs the interop venv (.venv or MESH_INTEROP_PYTHON)"))
    func otherPodOfThisNodeRefused() async throws {
        let other = try await WorkloadListener(host: "127.0.0.4")
        // Listening on local-a's own address, as the in-pod listener inside local-a's namespace does.
        let node = try await NodeA(host: "127.0.0.2", store: store())

        let denied = try await node.connect(authority: "127.0.0.4:\(other.port)")
        #expect(denied.stdout.contains("status 401"), "\(denied.combined)")
        #expect(other.accepted == 0, "the CONNECT was forwarded to another pod than the one it reached")

        await node.stop()
        try await other.channel.close()
    }

    @Test("a CONNECT to a captured pod's 15001, 15006 or 15008 (ztunnel's own listeners there) is denied 401",
          .enabled(if: Interop.python != nil, "needs the interop venv (.venv or MESH_INTEROP_PYTHON)"))
    func ztunnelPortsRefused() async throws {
        let node = try await NodeA(host: "127.0.0.1", store: store())
        for port in [15001, 15006, 15008] {
            let denied = try await node.connect(authority: "127.0.0.2:\(port)")
            #expect(denied.stdout.contains("status 401"), "port \(port): \(denied.combined)")
        }
        await node.stop()
    }
}
