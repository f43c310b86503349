import Foundation
import Logging
import NodeProxy

/// The lab's per-node agent, in the role istio-cni's node agent plays: it
/// serves ztunnel's ZDS socket, enrolls the node's ambient pods (written to
/// `enrollments.json` by `up` and `apply`), and installs each pod's capture
/// rules (``InPodRules``) once ztunnel acknowledged it, so that no connection
/// is redirected before ztunnel listens in the pod. Leaving the mesh goes the
/// other way: rules removed first, then the DelWorkload.
public final class LabNodeAgent: Sendable {
    private let layout: LabLayout
    private let node: String
    private let logger: Logger
    private let rules: InPodRules

    public init(layout: LabLayout, node: String, rules: InPodRules = InPodRules(), logger: Logger) {
        self.layout = layout
        self.node = node
        self.rules = rules
        self.logger = logger
    }

    /// Serves until cancelled.
    public func run() async throws {
        let workers = NamespaceWorkers(threads: 2)
        let server = try ZDSServer(path: layout.zdsSocket(node), workers: workers, logger: logger)
        let serving = Task { await server.run() }
        defer {
            serving.cancel()
        }
        var applied: [String: LabEnrollment] = [:]  // enrolled with rules installed
        var lastStatus: [String: LabEnrollmentStatus] = [:]
        logger.info("node agent serving ZDS", metadata: ["node": "\(node)", "socket": "\(layout.zdsSocket(node))"])
        while !Task.isCancelled {
            let wanted = layout.read([LabEnrollment].self, from: layout.enrollments(node)) ?? []
            let desired = Dictionary(wanted.map { ($0.uid, $0) }, uniquingKeysWith: { _, last in last })
            // Leaving: rules first, so nothing is redirected to listeners about to close.
            for (uid, enrollment) in applied where desired[uid] != enrollment {
                removeRules(enrollment)
                applied[uid] = nil
            }
            server.setPods(desired.values.map { enrollment in
                ZDSEnrollment(workload: ZDSWorkload(uid: enrollment.uid, name: enrollment.name, namespace: enrollment.namespace,
                                                    serviceAccount: enrollment.serviceAccount),
                              namespacePath: "/var/run/netns/\(enrollment.netns)")
            })
            try? await Task.sleep(for: .milliseconds(100))
            let states = server.enrollmentStates
            var status: [String: LabEnrollmentStatus] = [:]
            for (uid, enrollment) in desired {
                switch states[uid] ?? .pending {
                case .enrolled:
                    if applied[uid] == nil {
                        do {
                            try installRules(enrollment)
                            applied[uid] = enrollment
                        } catch {
                            status[uid] = LabEnrollmentStatus(state: "refused", error: "capture rules: \(error)")
                            continue
                        }
                    }
                    status[uid] = LabEnrollmentStatus(state: "captured")
                case .refused(let reason):
                    status[uid] = LabEnrollmentStatus(state: "refused", error: reason)
                case .pending:
                    status[uid] = LabEnrollmentStatus(state: "pending")
                }
            }
            if status != lastStatus {
                try? layout.write(status, to: layout.status(node))
                lastStatus = status
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        for enrollment in applied.values { removeRules(enrollment) }
        await workers.shutdown()
    }

    private func installRules(_ enrollment: LabEnrollment) throws(LabError) {
        try LabCommand.run(["ip", "netns", "exec", enrollment.netns, "iptables-restore", "-w"], input: rules.iptablesRestoreInput)
        logger.info("capture rules installed", metadata: ["pod": "\(enrollment.namespace)/\(enrollment.name)"])
    }

    private func removeRules(_ enrollment: LabEnrollment) {
        guard LabNamespaces.exists(enrollment.netns) else { return }
        _ = try? LabCommand.status(["ip", "netns", "exec", enrollment.netns, "iptables-restore", "-w"], input: "*mangle\nCOMMIT\n*nat\nCOMMIT\n")
        logger.info("capture rules removed", metadata: ["pod": "\(enrollment.namespace)/\(enrollment.name)"])
    }
}
