#if os(Linux)
import Glibc
import Logging
import MeshProto

/// A pod the node agent enrolls, as a ZDS AddWorkload names it.
public struct ZDSWorkload: Sendable, Hashable {
    /// The pod's uid (Kubernetes `metadata.uid`).
    public var uid: String
    public var name: String
    public var namespace: String
    public var serviceAccount: String

    public init(uid: String, name: String, namespace: String, serviceAccount: String) {
        self.uid = uid
        self.name = name
        self.namespace = namespace
        self.serviceAccount = serviceAccount
    }

    /// `namespace/name`, for logs.
    public var key: String { "\(namespace)/\(name)" }
}

/// What ztunnel does with enrollment messages (``ZDSClient`` calls it).
public protocol ZDSWorkloadHandler: Sendable {
    /// Captures a pod whose network namespace is `namespace` (the handler owns it from here).
    /// A thrown error is answered to the node agent in the Ack, and the pod is not captured.
    func addWorkload(_ workload: ZDSWorkload, namespace: NetworkNamespace) async throws
    /// Stops capturing a pod: its listeners close and its connections end. Unknown uids are ignored.
    func removeWorkload(uid: String) async
    /// Whether the pod is captured (a KeepWorkload after a reconnect).
    func hasWorkload(uid: String) async -> Bool
    /// The snapshot is complete: drops every captured pod not in `uids`.
    func snapshotComplete(keeping uids: Set<String>) async
}

/// ztunnel's end of ZDS: connects to the node agent's Unix socket, says
/// ZdsHello, and answers each WorkloadRequest with an Ack after applying it
/// through a ``ZDSWorkloadHandler``. It reconnects with backoff (10 ms doubling
/// to 15 s) when the agent is absent or goes away; captured pods stay captured
/// meanwhile, and the next snapshot reconciles them.
///
/// A malformed request, an AddWorkload without a descriptor, or one whose
/// descriptor is not a network namespace is answered with an Ack naming the
/// problem; nothing else changes and the descriptor is closed.
public final class ZDSClient: Sendable {
    private let path: String
    private let handler: any ZDSWorkloadHandler
    private let workers: NamespaceWorkers
    private let logger: Logger

    public init(path: String = ZDSSocket.defaultPath, handler: any ZDSWorkloadHandler, workers: NamespaceWorkers, logger: Logger) {
        self.path = path
        self.handler = handler
        self.workers = workers
        self.logger = logger
    }

    /// Runs until the task is cancelled.
    public func run() async {
        var backoff = Duration.milliseconds(10)
        var warned = false
        while !Task.isCancelled {
            let socket: ZDSSocket
            do {
                let path = self.path
                socket = try await workers.run { try ZDSSocket.connect(path: path) }
            } catch {
                if !warned { logger.warning("cannot reach the node agent's ZDS socket; retrying", metadata: ["path": "\(path)", "error": "\(error)"]) }
                warned = true
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(15))
                continue
            }
            warned = false
            backoff = .milliseconds(10)
            logger.info("connected to the node agent (ZDS)", metadata: ["path": "\(path)"])
            await withTaskCancellationHandler {
                await serve(socket)
            } onCancel: {
                socket.shutdown()
            }
            socket.close()
        }
    }

    private func serve(_ socket: ZDSSocket) async {
        var hello = Istio_Workload_Zds_ZdsHello()
        hello.version = .v1
        var named = Set<String>()
        var snapshotDone = false
        do {
            let greeting = hello
            try await workers.run { try socket.send(greeting) }
            while !Task.isCancelled {
                let received = try await workers.run { () throws -> ReceivedRequest in
                    do {
                        let (request, descriptor) = try socket.receive(Istio_Workload_Zds_WorkloadRequest.self)
                        return ReceivedRequest(request: request, descriptor: descriptor)
                    } catch ZDSError.malformed(let detail) {
                        return ReceivedRequest(malformed: detail)
                    }
                }
                let error = await apply(received.request, descriptor: received.descriptor, malformed: received.malformed, named: &named, snapshotDone: &snapshotDone)
                var ack = Istio_Workload_Zds_WorkloadResponse()
                ack.ack.error = error ?? ""
                let answer = ack
                try await workers.run { try socket.send(answer) }
            }
        } catch ZDSError.closed {
            logger.warning("node agent closed the ZDS connection; reconnecting", metadata: ["path": "\(path)"])
        } catch {
            logger.warning("ZDS connection failed; reconnecting", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    /// Applies one request; returns the Ack's error text (nil when applied).
    private func apply(_ request: Istio_Workload_Zds_WorkloadRequest?, descriptor: CInt?, malformed: String?, named: inout Set<String>,
                       snapshotDone: inout Bool) async -> String? {
        func refuse(_ reason: String) -> String {
            if let descriptor { Glibc.close(descriptor) }
            logger.warning("ZDS request refused", metadata: ["reason": "\(reason)"])
            return reason
        }
        guard let request else { return refuse("malformed WorkloadRequest: \(malformed ?? "unknown")") }
        switch request.payload {
        case .add(let add):
            guard !add.uid.isEmpty else { return refuse("AddWorkload without a uid") }
            guard let descriptor else { return refuse("AddWorkload \(add.uid) without a network namespace descriptor") }
            let info = add.workloadInfo
            let workload = ZDSWorkload(uid: add.uid, name: info.name, namespace: info.namespace, serviceAccount: info.serviceAccount)
            let namespace = NetworkNamespace(adopting: descriptor, name: workload.name.isEmpty ? add.uid : workload.key)
            do {
                try await handler.addWorkload(workload, namespace: namespace)
            } catch {
                namespace.close()
                logger.warning("pod not captured", metadata: ["pod": "\(workload.key)", "uid": "\(add.uid)", "error": "\(error)"])
                return "\(error)"
            }
            named.insert(add.uid)
            return nil
        case .keep(let keep):
            if let descriptor { Glibc.close(descriptor) }
            guard !snapshotDone else { return refuse("KeepWorkload \(keep.uid) after SnapshotSent") }
            guard await handler.hasWorkload(uid: keep.uid) else { return refuse("KeepWorkload \(keep.uid): not captured") }
            named.insert(keep.uid)
            return nil
        case .del(let del):
            if let descriptor { Glibc.close(descriptor) }
            await handler.removeWorkload(uid: del.uid)
            named.remove(del.uid)
            return nil
        case .snapshotSent:
            if let descriptor { Glibc.close(descriptor) }
            if !snapshotDone { await handler.snapshotComplete(keeping: named) }
            snapshotDone = true
            return nil
        case nil:
            return refuse("WorkloadRequest without a payload")
        }
    }
}

/// One received request: the message (nil when it did not decode, with why) and its descriptor.
private struct ReceivedRequest: Sendable {
    var request: Istio_Workload_Zds_WorkloadRequest?
    var descriptor: CInt?
    var malformed: String?
}
#endif
