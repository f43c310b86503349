import Foundation
import MeshControlPlane

/// The whole mesh on one host, from Kubernetes manifests (`scripts/lab`):
/// ``up(manifests:)`` builds the network (``LabNetwork``), starts
/// `mesh-controlplane` in the wire namespace, a node agent
/// (``LabNodeAgent``) and a ztunnel in each node's namespace, and each
/// container's command in its pod's namespace; ``apply(manifests:)`` changes a
/// running lab live; ``down()`` removes everything, also after a crash.
///
/// Every call blocks while the host's tools run (call it from a thread of
/// your own, not from Swift's cooperative pool).
public struct Lab: Sendable {
    public let layout: LabLayout
    /// Where `ztunnel`, `mesh-controlplane` and `mesh-lab` are.
    public let binaries: String
    /// Progress lines (`up` and `apply` say what they do).
    public let report: @Sendable (String) -> Void
    /// The prefix of the lab's namespace names (`swm`; tests use their own so a lab can run beside them).
    public let prefix: String
    /// Flags added to every ztunnel this lab starts (`up`, `apply`, `restart`), e.g.
    /// `["--pool-idle-timeout", "20"]` for `scripts/soak`.
    public let ztunnelArguments: [String]
    /// How `up` runs the control plane (replicas, flags); `restart` and `apply` follow what `up` recorded.
    public let controlPlane: LabControlPlane
    public let trustDomain = "cluster.local"
    private var processes: LabProcesses { LabProcesses(layout: layout) }

    public init(layout: LabLayout = LabLayout(), binaries: String, prefix: String = "swm", ztunnelArguments: [String] = [],
                controlPlane: LabControlPlane = LabControlPlane(), report: @escaping @Sendable (String) -> Void = { _ in }) {
        self.layout = layout
        self.binaries = binaries
        self.prefix = prefix
        self.ztunnelArguments = ztunnelArguments
        self.controlPlane = controlPlane
        self.report = report
    }

    /// The running lab's record, if one is up.
    public var record: LabRecord? { layout.read(LabRecord.self, from: layout.record) }

    /// Checks for root and the tools the lab drives.
    public static func checkHost() throws(LabError) {
        guard getuid() == 0 else { throw .notRoot }
        for tool in ["ip", "ss", "iptables-restore", "curl", "sysctl"] where !LabCommand.exists(tool) { throw .missingTool(tool) }
    }

    /// Reads `manifests` into a topology (the same loader and plan as the control plane).
    public static func topology(manifests: String, prefix: String = "swm") throws(LabError) -> LabTopology {
        let state: ClusterState
        do {
            state = try ClusterManifestLoader().load(directory: manifests)
        } catch {
            throw .invalid("\(manifests): \(error)")
        }
        let plan: AddressPlan
        do {
            plan = try AddressAllocator().plan(for: state)
        } catch {
            throw .invalid("\(manifests): \(error)")
        }
        return try LabTopology.build(state: state, plan: plan, prefix: prefix)
    }

    // MARK: up

    /// Builds and starts the lab; on a lab that is already up, the same as ``apply(manifests:)``.
    @discardableResult
    public func up(manifests: String) throws(LabError) -> LabTopology {
        try Self.checkHost()
        if record != nil { return try apply(manifests: manifests) }
        let topology = try Self.topology(manifests: manifests, prefix: prefix)
        guard !topology.nodes.isEmpty else { throw .invalid("\(manifests) has no Node") }
        do {
            try layout.prepare(nodes: topology.nodes.map(\.name))
            try copyManifests(from: manifests)
            report("network: \(topology.nodes.count) nodes, \(topology.pods.count) pods")
            try LabNetwork(topology: topology).create()
            try layout.write(LabRecord(source: manifests, binaries: binaries, topology: topology, controlPlane: controlPlane), to: layout.record)
            try ensureCA(nodes: topology.nodes.map(\.name))
            for replica in 0..<controlPlane.replicas { try startControlPlane(topology, replica: replica, controlPlane) }
            for node in topology.nodes {
                try writeEnrollments(topology, node: node.name)
                try startNode(node, topology: topology, controlPlane)
            }
            for node in topology.nodes { try waitReady(node) }
            try waitCaptured(topology.pods.filter(\.ambient))
            for pod in topology.pods { try startContainers(pod) }
            waitListening(topology.pods)
        } catch {
            report("up failed: \(error); run `scripts/lab down` to clean up")
            throw error
        }
        return topology
    }

    private func copyManifests(from source: String) throws(LabError) {
        let files: [String]
        do {
            files = try ClusterManifestLoader.manifestFiles(in: source)
        } catch {
            throw .invalid("\(source): \(error)")
        }
        // Written beside, then swapped in, so the control plane never reads half a tree.
        let staging = layout.root + "/manifests.next"
        let manager = FileManager.default
        try? manager.removeItem(atPath: staging)
        do {
            try manager.createDirectory(atPath: staging, withIntermediateDirectories: true)
            for (index, file) in files.enumerated() {
                let name = String(format: "%04d-", index) + (file as NSString).lastPathComponent
                try manager.copyItem(atPath: file, toPath: staging + "/" + name)
            }
            let old = layout.root + "/manifests.old"
            try? manager.removeItem(atPath: old)
            if manager.fileExists(atPath: layout.manifests) { try manager.moveItem(atPath: layout.manifests, toPath: old) }
            try manager.moveItem(atPath: staging, toPath: layout.manifests)
            try? manager.removeItem(atPath: old)
        } catch {
            throw .invalid("cannot copy manifests to \(layout.manifests): \(error)")
        }
    }

    private func ensureCA(nodes: [String]) throws(LabError) {
        let controlplane = binaries + "/mesh-controlplane"
        if !FileManager.default.fileExists(atPath: layout.ca + "/ca.pem") {
            try LabCommand.run([controlplane, "ca", "init", "--dir", layout.ca, "--trust-domain", trustDomain])
        }
        for node in nodes where !FileManager.default.fileExists(atPath: layout.credential(node) + "/svid.pem") {
            try LabCommand.run([controlplane, "node-credential", node, "--ca-dir", layout.ca, "--out", layout.credential(node)])
        }
    }

    private func startControlPlane(_ topology: LabTopology, replica: Int, _ controlPlane: LabControlPlane) throws(LabError) {
        let name = LabControlPlane.name(replica: replica)
        let address = controlPlane.address(replica: replica, gateway: topology.gatewayAddress)
        report("control plane: \(name), mesh-controlplane on \(address) (namespace \(topology.wireNetns))")
        try processes.start(name, netns: topology.wireNetns, argv: [
            binaries + "/mesh-controlplane", "serve", "--manifests", layout.manifests, "--ca-dir", layout.ca,
            "--address", address, "--monitoring-address", controlPlane.monitoringAddress(replica: replica, gateway: topology.gatewayAddress),
            "--trust-domain", trustDomain,
        ] + controlPlane.arguments)
    }

    private func startNode(_ node: LabTopology.Node, topology: LabTopology, _ controlPlane: LabControlPlane) throws(LabError) {
        report("node \(node.name): \(node.address), pods \(node.podCIDR); node agent and ztunnel in \(node.netns)")
        try processes.start("agent-\(node.name)", netns: node.netns, argv: [
            binaries + "/mesh-lab", "node-agent", "--state", layout.root, "--node", node.name,
        ])
        try startZtunnel(node, topology: topology, controlPlane)
    }

    private func startZtunnel(_ node: LabTopology.Node, topology: LabTopology, _ controlPlane: LabControlPlane) throws(LabError) {
        let replicas = (0..<controlPlane.replicas).map { controlPlane.address(replica: $0, gateway: topology.gatewayAddress) }.joined(separator: ",")
        try processes.start("ztunnel-\(node.name)", netns: node.netns, argv: [
            binaries + "/ztunnel", "--node", node.name, "--node-credential", layout.credential(node.name),
            "--xds-address", replicas, "--ca-address", replicas, "--zds-socket", layout.zdsSocket(node.name),
            "--hbone-listen", "\(node.address):15008",
            // Names outside the cluster go to the wire (the lab's outside world), where a resolver may answer.
            "--dns-upstream", "\(topology.gatewayAddress):53",
        ] + ztunnelArguments, environment: Self.ztunnelEnvironment)
    }

    /// The environment every ztunnel runs with, as a DaemonSet's `env` would set it: glibc's
    /// per-thread cache of freed blocks (tcache) off. After a burst of connections those cached
    /// blocks pin the pages around them, which `malloc_trim` cannot give back: with it on,
    /// the capturing node's RSS stayed 7.8–10.4% above its baseline a minute after 10,000
    /// concurrent connections; off, 3.8–4.9% (`scripts/soak`, docs/reliability.md), for about 1%
    /// more CPU per new connection and none per byte.
    public static let ztunnelEnvironment = ["GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"]

    // MARK: restart

    /// Starts `controlplane` (or replica `controlplane-N`) or `ztunnel-NODE` again with the
    /// arguments `up` gave it, after it exited or was killed (fault tests; an operator after a
    /// crash). One still running is stopped first. A ztunnel is waited for until ready; its node
    /// agent re-enrolls the node's pods.
    public func restart(_ component: String) throws(LabError) {
        guard let record else { throw .notRunning }
        let topology = record.topology
        let controlPlane = record.controlPlane ?? LabControlPlane()
        if let replica = (0..<controlPlane.replicas).first(where: { LabControlPlane.name(replica: $0) == component }) {
            processes.stop(component)
            try startControlPlane(topology, replica: replica, controlPlane)
            return
        }
        guard let node = topology.nodes.first(where: { "ztunnel-\($0.name)" == component }) else {
            let replicas = (0..<controlPlane.replicas).map(LabControlPlane.name(replica:)).joined(separator: ", ")
            throw .invalid("cannot restart \(component): only \(replicas) and ztunnel-NODE can be")
        }
        processes.stop(component)
        try startZtunnel(node, topology: topology, controlPlane)
        try waitReady(node)
    }

    private func waitReady(_ node: LabTopology.Node) throws(LabError) {
        for _ in 0..<600 {
            if (try? LabCommand.status(["ip", "netns", "exec", node.netns, "curl", "-sf", "-m", "1", "http://127.0.0.1:15021/healthz/ready"]))?.status == 0 {
                report("ztunnel on \(node.name) ready")
                return
            }
            guard processes.pid("ztunnel-\(node.name)") != nil else {
                throw .invalid("ztunnel on \(node.name) exited; see `scripts/lab logs ztunnel-\(node.name)`")
            }
            usleep(100_000)
        }
        throw .timedOut("ztunnel on \(node.name) (see `scripts/lab logs ztunnel-\(node.name)`)")
    }

    /// Waits until every pod in `pods` is captured by its node's ztunnel; a refusal is an error naming the reason.
    func waitCaptured(_ pods: [LabTopology.Pod]) throws(LabError) {
        var remaining = pods
        for _ in 0..<600 where !remaining.isEmpty {
            var waiting: [LabTopology.Pod] = []
            for pod in remaining {
                let status = layout.read([String: LabEnrollmentStatus].self, from: layout.status(pod.node))?[pod.uid]
                if status?.state == "refused" { throw .invalid("pod \(pod.key) not captured: \(status?.error ?? "refused")") }
                if status?.state != "captured" { waiting.append(pod) }
            }
            remaining = waiting
            if !remaining.isEmpty { usleep(100_000) }
        }
        guard remaining.isEmpty else { throw .timedOut("capture of \(remaining.map(\.key).joined(separator: ", "))") }
    }

    private func writeEnrollments(_ topology: LabTopology, node: String) throws(LabError) {
        let enrollments = topology.pods(on: node).filter(\.ambient).map {
            LabEnrollment(uid: $0.uid, namespace: $0.namespace, name: $0.name, serviceAccount: $0.serviceAccount, netns: $0.netns)
        }
        try layout.write(enrollments, to: layout.enrollments(node))
    }

    private func startContainers(_ pod: LabTopology.Pod) throws(LabError) {
        for container in pod.containers {
            try processes.start(Self.processName(pod, container: container.name), netns: pod.netns, argv: container.argv, environment: container.env)
        }
    }

    /// Waits (up to 15 s) until every container's declared TCP ports listen in its pod, as a
    /// `tcpSocket` readiness probe would, so that a lab just up answers its first request. A
    /// container that exits or does not listen in time is reported, not an error: a pod that
    /// never becomes ready is still part of the lab, as in Kubernetes.
    func waitListening(_ pods: [LabTopology.Pod]) {
        var waiting = pods.filter { $0.containers.contains { !$0.ports.isEmpty } }
        let deadline = ContinuousClock.now + .seconds(15)
        while !waiting.isEmpty {
            waiting = waiting.filter { pod in
                let listening = Self.listeningPorts(netns: pod.netns)
                return pod.containers.contains { container in
                    !container.ports.allSatisfy(listening.contains) && processes.pid(Self.processName(pod, container: container.name)) != nil
                }
            }
            if waiting.isEmpty || ContinuousClock.now >= deadline { break }
            usleep(100_000)
        }
        for pod in pods {
            let listening = Self.listeningPorts(netns: pod.netns)
            for container in pod.containers where !container.ports.allSatisfy(listening.contains) {
                let name = Self.processName(pod, container: container.name)
                let state = processes.pid(name) == nil ? "exited" : "is running but not listening after 15 s"
                report("pod \(pod.key): container \(container.name) \(state) (ports \(container.ports.map(String.init).joined(separator: ","))); see `scripts/lab logs \(pod.key)`")
            }
        }
    }

    /// The TCP ports listening in a network namespace (`ss -Hltn`).
    static func listeningPorts(netns: String) -> Set<UInt16> {
        guard let output = try? LabCommand.status(["ip", "netns", "exec", netns, "ss", "-Hltn"]), output.status == 0 else { return [] }
        return listeningPorts(ss: output.stdout)
    }

    /// The local ports of `ss -Hltn` output.
    static func listeningPorts(ss output: String) -> Set<UInt16> {
        Set(output.split(separator: "\n").compactMap { line in
            // State Recv-Q Send-Q Local-Address:Port Peer-Address:Port
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 4, let colon = fields[3].lastIndex(of: ":") else { return nil }
            return UInt16(fields[3][fields[3].index(after: colon)...])
        })
    }

    static func processName(_ pod: LabTopology.Pod, container: String) -> String { "pod-\(pod.namespace)-\(pod.name)-\(container)" }

    // MARK: apply

    /// Re-reads `manifests` into the running lab: pods added or removed, enrollment
    /// changes; the control plane picks up labels and policies from the copy by itself.
    @discardableResult
    public func apply(manifests: String) throws(LabError) -> LabTopology {
        try Self.checkHost()
        guard var record else { throw .notRunning }
        let next = try Self.topology(manifests: manifests, prefix: record.topology.prefix)
        guard next.nodes == record.topology.nodes else {
            throw .invalid("the Nodes changed; the lab changes pods, labels and policies live, but nodes only with `scripts/lab down` and `up`")
        }
        let old = record.topology
        let network = LabNetwork(topology: next)
        let removed = old.pods.filter { pod in next.pod(pod.key).map { $0.address != pod.address || $0.node != pod.node || $0.containers != pod.containers } ?? true }
        let added = next.pods.filter { pod in removed.contains { $0.key == pod.key } || old.pod(pod.key) == nil }
        // Leaving pods: out of the mesh first (rules, then ZDS), then their processes and namespace.
        var interim = next
        interim.pods = next.pods.filter { pod in !added.contains { $0.key == pod.key } }
        for node in next.nodes { try writeEnrollments(interim, node: node.name) }
        try copyManifests(from: manifests)
        for pod in removed {
            report("pod \(pod.key): removed")
            try waitReleased(pod)
            for container in pod.containers { processes.stop(Self.processName(pod, container: container.name), grace: .seconds(2)) }
            try network.remove(pod: pod)
        }
        for pod in added {
            report("pod \(pod.key): \(pod.address) on \(pod.node)\(pod.ambient ? ", ambient" : "")")
            try network.create(pod: pod)
        }
        for node in next.nodes { try writeEnrollments(next, node: node.name) }
        record.topology = next
        record.source = manifests
        try layout.write(record, to: layout.record)
        try waitCaptured(next.pods.filter(\.ambient))
        for pod in added { try startContainers(pod) }
        waitListening(added)
        return next
    }

    private func waitReleased(_ pod: LabTopology.Pod) throws(LabError) {
        for _ in 0..<100 {
            let status = layout.read([String: LabEnrollmentStatus].self, from: layout.status(pod.node))
            if status?[pod.uid] == nil { return }
            usleep(100_000)
        }
        throw .timedOut("the node agent to release \(pod.key)")
    }

    // MARK: down

    /// Stops every process and removes every namespace of the lab (and with them
    /// their links, routes and rules) and the state directory. Safe after a crash
    /// and when nothing is up.
    public func down() throws(LabError) {
        let prefix = record?.topology.prefix ?? self.prefix
        for name in processes.names { processes.stop(name, grace: .seconds(3)) }
        let namespaces = LabNamespaces.list(prefix: prefix)
        // Pods first, then nodes, then the wire: nothing is left half-linked.
        let ordered = namespaces.filter { $0.hasPrefix("\(prefix)-pod-") } + namespaces.filter { $0.hasPrefix("\(prefix)-node-") }
            + namespaces.filter { !$0.hasPrefix("\(prefix)-pod-") && !$0.hasPrefix("\(prefix)-node-") }
        for namespace in ordered { LabNamespaces.killProcesses(in: namespace) }
        for namespace in ordered { try LabNamespaces.delete(namespace) }
        try? FileManager.default.removeItem(atPath: layout.root)
    }

    // MARK: status, exec, logs

    /// The table `up` and `status` print: nodes, pods, addresses, identities and capture.
    public func table() throws(LabError) -> String {
        guard let record else { throw .notRunning }
        let topology = record.topology
        var lines = ["NODE       ADDRESS        POD CIDR         ZTUNNEL"]
        for node in topology.nodes {
            let alive = processes.pid("ztunnel-\(node.name)") != nil ? "running" : "stopped"
            lines.append(Self.pad(node.name, 10) + " " + Self.pad(node.address, 14) + " " + Self.pad(node.podCIDR, 16) + " " + alive)
        }
        lines.append("")
        lines.append("POD                        NODE       ADDRESS        CAPTURE    IDENTITY")
        for pod in topology.pods {
            let status = layout.read([String: LabEnrollmentStatus].self, from: layout.status(pod.node))?[pod.uid]
            let capture = pod.ambient ? (status?.state ?? "pending") : "none"
            lines.append(Self.pad(pod.key, 26) + " " + Self.pad(pod.node, 10) + " " + Self.pad(pod.address, 14) + " " + Self.pad(capture, 10) + " "
                         + (pod.ambient ? pod.identity(trustDomain: trustDomain) : "-") + (status?.error.map { "  (\($0))" } ?? ""))
        }
        if !topology.services.isEmpty {
            lines.append("")
            lines.append("SERVICE                    ADDRESS        PORTS      HOSTNAME")
            for service in topology.services {
                lines.append(Self.pad(service.key, 26) + " " + Self.pad(service.address, 14) + " " + Self.pad(service.ports.map(String.init).joined(separator: ","), 10)
                             + " " + service.hostname)
            }
        }
        return lines.joined(separator: "\n")
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// Runs `argv` in pod `key`'s namespace with this process's stdin, stdout and stderr; returns its exit status.
    public func exec(pod key: String, _ argv: [String]) throws(LabError) -> Int32 {
        guard let record else { throw .notRunning }
        guard let pod = record.topology.pod(key) else { throw .invalid("no pod \(key) in the lab (pods: \(record.topology.pods.map(\.key).joined(separator: ", ")))") }
        guard !argv.isEmpty else { throw .invalid("give a command: scripts/lab exec \(key) -- CMD...") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", pod.netns] + argv
        do {
            try process.run()
        } catch {
            throw .invalid("cannot run \(argv.joined(separator: " ")): \(error)")
        }
        process.waitUntilExit()
        return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    }

    /// The output of a component (`controlplane`, `ztunnel-NODE`, `agent-NODE`) or a pod (`NAMESPACE/POD`, every container).
    public func logs(_ name: String) throws(LabError) -> String {
        guard let record else { throw .notRunning }
        var files: [String] = []
        if let pod = record.topology.pod(name) {
            files = pod.containers.map { layout.log(Self.processName(pod, container: $0.name)) }
        } else {
            files = [layout.log(name)]
        }
        var text = ""
        for file in files {
            guard let contents = FileManager.default.contents(atPath: file) else {
                let replicas = (0..<(record.controlPlane ?? LabControlPlane()).replicas).map(LabControlPlane.name(replica:)).joined(separator: ", ")
                throw .invalid("no log for \(name) (components: \(replicas), \(record.topology.nodes.map { "ztunnel-\($0.name), agent-\($0.name)" }.joined(separator: ", ")); pods: NAMESPACE/POD)")
            }
            text += String(decoding: contents, as: UTF8.self)
        }
        return text
    }
}
