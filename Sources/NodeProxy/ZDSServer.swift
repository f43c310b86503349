#if os(Linux)
import Foundation
import Glibc
import Logging
import MeshProto
import NIOConcurrencyHelpers

/// A pod the node agent enrolls with ztunnel: who it is and where its network namespace is.
public struct ZDSEnrollment: Sendable, Hashable {
    public var workload: ZDSWorkload
    /// The namespace's path (for example `/var/run/netns/NAME`); its descriptor is what is sent.
    public var namespacePath: String

    public init(workload: ZDSWorkload, namespacePath: String) {
        self.workload = workload
        self.namespacePath = namespacePath
    }
}

/// What became of one enrollment at the connected ztunnels.
public enum ZDSEnrollmentState: Sendable, Hashable {
    /// No ztunnel is connected yet (or it has not answered).
    case pending
    /// Every connected ztunnel acknowledged it.
    case enrolled
    /// A ztunnel refused it; the text is its Ack's error.
    case refused(String)
}

/// The node agent's end of ZDS (istio-cni's role): listens on the Unix socket,
/// and for each ztunnel that connects and says ZdsHello sends a snapshot (an
/// AddWorkload with the namespace descriptor per pod, then SnapshotSent); after
/// that, every change of the desired pods as AddWorkload or DelWorkload. Each
/// request waits for its Ack. Several ztunnels may be connected at once (an
/// upgrade); each gets every message.
public final class ZDSServer: Sendable {
    private enum Event: Sendable {
        case connected(ZDSSocket)
        case desired([ZDSEnrollment])
    }

    private let listener: ZDSListener
    private let workers: NamespaceWorkers
    private let logger: Logger
    private let events: AsyncStream<Event>.Continuation
    private let stream: AsyncStream<Event>
    private let states = NIOLockedValueBox<[String: ZDSEnrollmentState]>([:])
    private let connections = NIOLockedValueBox(0)

    /// Listens at `path` (a stale socket file is replaced).
    public init(path: String = ZDSSocket.defaultPath, workers: NamespaceWorkers, logger: Logger) throws(ZDSError) {
        listener = try ZDSListener(path: path)
        self.workers = workers
        self.logger = logger
        (stream, events) = AsyncStream.makeStream(of: Event.self)
    }

    /// Sets the pods that should be enrolled; connected ztunnels get the difference.
    public func setPods(_ pods: [ZDSEnrollment]) {
        events.yield(.desired(pods))
    }

    /// Each desired pod's state, by uid.
    public var enrollmentStates: [String: ZDSEnrollmentState] { states.withLockedValue { $0 } }

    /// Connected ztunnels that completed the hello.
    public var connectedCount: Int { connections.withLockedValue { $0 } }

    /// Accepts ztunnels and sends them enrollments until the task is cancelled.
    public func run() async {
        let listener = self.listener
        let events = self.events
        let logger = self.logger
        let accepting = Task.detached {
            while !Task.isCancelled {
                do {
                    // A blocking accept on a thread of its own, woken by close().
                    let socket = try await Self.blockingAccept(listener)
                    events.yield(.connected(socket))
                } catch {
                    if case ZDSError.closed = error { return }
                    logger.warning("ZDS accept failed", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
        await withTaskCancellationHandler {
            await process()
        } onCancel: {
            listener.close()
            events.finish()
        }
        accepting.cancel()
    }

    private static func blockingAccept(_ listener: ZDSListener) async throws -> ZDSSocket {
        // A thread of its own: an accept may wait forever and must not hold a worker of a shared pool.
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try listener.accept() }) }.start()
        }
    }

    /// A connected ztunnel and what it has acknowledged.
    private final class Peer {
        let socket: ZDSSocket
        var enrolled: [String: ZDSEnrollment] = [:]
        var refused: [String: (enrollment: ZDSEnrollment, error: String)] = [:]
        init(socket: ZDSSocket) { self.socket = socket }
    }

    private func process() async {
        var peers: [Peer] = []
        var desired: [String: ZDSEnrollment] = [:]
        for await event in stream {
            switch event {
            case .connected(let socket):
                let peer = Peer(socket: socket)
                do {
                    try await hello(peer)
                    for enrollment in desired.values.sorted(by: { $0.workload.uid < $1.workload.uid }) {
                        try await add(enrollment, to: peer)
                    }
                    var request = Istio_Workload_Zds_WorkloadRequest()
                    request.snapshotSent = Istio_Workload_Zds_SnapshotSent()
                    _ = try await exchange(request, descriptor: nil, with: peer)
                    peers.append(peer)
                    logger.info("ztunnel connected (ZDS); snapshot sent", metadata: ["pods": "\(desired.count)", "refused": "\(peer.refused.count)"])
                } catch {
                    logger.warning("ZDS snapshot to ztunnel failed", metadata: ["error": "\(error)"])
                    socket.close()
                }
            case .desired(let pods):
                desired = Dictionary(pods.map { ($0.workload.uid, $0) }, uniquingKeysWith: { _, last in last })
                var alive: [Peer] = []
                for peer in peers {
                    do {
                        for uid in peer.enrolled.keys.sorted() where desired[uid] == nil {
                            var request = Istio_Workload_Zds_WorkloadRequest()
                            request.del.uid = uid
                            _ = try await exchange(request, descriptor: nil, with: peer)
                            peer.enrolled[uid] = nil
                        }
                        // A refused pod is offered again only when its enrollment changes.
                        peer.refused = peer.refused.filter { desired[$0.key] == $0.value.enrollment }
                        for enrollment in desired.values.sorted(by: { $0.workload.uid < $1.workload.uid })
                        where peer.enrolled[enrollment.workload.uid] != enrollment && peer.refused[enrollment.workload.uid]?.enrollment != enrollment {
                            try await add(enrollment, to: peer)
                        }
                        alive.append(peer)
                    } catch {
                        logger.warning("ZDS connection to ztunnel lost", metadata: ["error": "\(error)"])
                        peer.socket.close()
                    }
                }
                peers = alive
            }
            publish(desired: desired, peers: peers)
        }
        for peer in peers { peer.socket.close() }
    }

    private func publish(desired: [String: ZDSEnrollment], peers: [Peer]) {
        var next: [String: ZDSEnrollmentState] = [:]
        for uid in desired.keys {
            if let refusal = peers.lazy.compactMap({ $0.refused[uid]?.error }).first {
                next[uid] = .refused(refusal)
            } else if !peers.isEmpty, peers.allSatisfy({ $0.enrolled[uid] == desired[uid] }) {
                next[uid] = .enrolled
            } else {
                next[uid] = .pending
            }
        }
        states.withLockedValue { $0 = next }
        connections.withLockedValue { $0 = peers.count }
    }

    private func hello(_ peer: Peer) async throws {
        let socket = peer.socket
        let (hello, descriptor) = try await workers.run { try socket.receive(Istio_Workload_Zds_ZdsHello.self) }
        if let descriptor { Glibc.close(descriptor) }
        guard hello.version == .v1 else { throw ZDSError.protocolViolation("ZdsHello version \(hello.version.rawValue), want V1") }
    }

    private func add(_ enrollment: ZDSEnrollment, to peer: Peer) async throws {
        let descriptor = Glibc.open(enrollment.namespacePath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let error = ZDSError.system(operation: "open \(enrollment.namespacePath)", errno: errno)
            peer.refused[enrollment.workload.uid] = (enrollment, "\(error)")
            return
        }
        defer { Glibc.close(descriptor) }
        var request = Istio_Workload_Zds_WorkloadRequest()
        request.add.uid = enrollment.workload.uid
        request.add.workloadInfo.name = enrollment.workload.name
        request.add.workloadInfo.namespace = enrollment.workload.namespace
        request.add.workloadInfo.serviceAccount = enrollment.workload.serviceAccount
        if let error = try await exchange(request, descriptor: descriptor, with: peer) {
            peer.refused[enrollment.workload.uid] = (enrollment, error)
            peer.enrolled[enrollment.workload.uid] = nil
            logger.warning("ztunnel refused a pod", metadata: ["pod": "\(enrollment.workload.key)", "error": "\(error)"])
        } else {
            peer.enrolled[enrollment.workload.uid] = enrollment
            peer.refused[enrollment.workload.uid] = nil
            logger.info("pod enrolled with ztunnel", metadata: ["pod": "\(enrollment.workload.key)", "uid": "\(enrollment.workload.uid)"])
        }
    }

    /// Sends a request and waits for its Ack; returns the Ack's error (nil when applied).
    private func exchange(_ request: Istio_Workload_Zds_WorkloadRequest, descriptor: CInt?, with peer: Peer) async throws -> String? {
        let socket = peer.socket
        let response = try await workers.run { () throws -> Istio_Workload_Zds_WorkloadResponse in
            try socket.send(request, passing: descriptor)
            let (response, passed) = try socket.receive(Istio_Workload_Zds_WorkloadResponse.self)
            if let passed { Glibc.close(passed) }
            return response
        }
        guard case .ack(let ack) = response.payload else { throw ZDSError.protocolViolation("WorkloadResponse without an Ack") }
        return ack.error.isEmpty ? nil : ack.error
    }
}
#endif
