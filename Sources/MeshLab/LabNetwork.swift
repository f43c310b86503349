import Foundation

/// Builds and removes the lab's network: namespaces, the bridge, veth pairs,
/// addresses and routes, with iproute2. Every link is created inside the
/// namespaces it joins (`ip -n A link add X type veth peer name Y netns B`):
/// the root namespace never gets an interface, address or route of the lab.
public struct LabNetwork: Sendable {
    public let topology: LabTopology

    public init(topology: LabTopology) { self.topology = topology }

    /// The link-local next hop every pod routes through (proxy ARP on the node side, as Calico does).
    public static let podGateway = "169.254.1.1"

    /// Creates the wire, every node and every pod (namespaces that already exist are reused).
    public func create() throws(LabError) {
        try createWire()
        for node in topology.nodes { try create(node: node) }
        try routeBetweenNodes()
        for pod in topology.pods { try create(pod: pod) }
    }

    func createWire() throws(LabError) {
        let wire = topology.wireNetns
        try addNamespace(wire)
        if !(try linkExists("br0", in: wire)) {
            try LabCommand.run(["ip", "-n", wire, "link", "add", "br0", "type", "bridge"])
            try LabCommand.run(["ip", "-n", wire, "addr", "add", "\(topology.gatewayAddress)/16", "dev", "br0"])
        }
        try LabCommand.run(["ip", "-n", wire, "link", "set", "br0", "up"])
        try LabCommand.run(["ip", "netns", "exec", wire, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
    }

    func create(node: LabTopology.Node) throws(LabError) {
        let wire = topology.wireNetns
        try addNamespace(node.netns)
        if !(try linkExists(node.wireInterface, in: wire)) {
            try LabCommand.run(["ip", "-n", wire, "link", "add", node.wireInterface, "type", "veth", "peer", "name", "eth0", "netns", node.netns])
            try LabCommand.run(["ip", "-n", node.netns, "addr", "add", "\(node.address)/16", "dev", "eth0"])
        }
        try LabCommand.run(["ip", "-n", wire, "link", "set", node.wireInterface, "master", "br0", "up"])
        try LabCommand.run(["ip", "-n", node.netns, "link", "set", "eth0", "up"])
        try LabCommand.run(["ip", "netns", "exec", node.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        // The wire reaches this node's pods through it (replies to the control plane, "outside" traffic).
        try LabCommand.run(["ip", "-n", wire, "route", "replace", node.podCIDR, "via", node.address])
        try LabCommand.run(["ip", "-n", node.netns, "route", "replace", "default", "via", topology.gatewayAddress])
    }

    func routeBetweenNodes() throws(LabError) {
        for node in topology.nodes {
            for other in topology.nodes where other.name != node.name {
                try LabCommand.run(["ip", "-n", node.netns, "route", "replace", other.podCIDR, "via", other.address])
            }
        }
    }

    /// Creates a pod's namespace and its link to the node (idempotent).
    public func create(pod: LabTopology.Pod) throws(LabError) {
        guard let node = topology.node(pod.node) else { throw .invalid("pod \(pod.key) is on unknown node \(pod.node)") }
        try addNamespace(pod.netns)
        if !(try linkExists(pod.hostInterface, in: node.netns)) {
            try LabCommand.run(["ip", "-n", node.netns, "link", "add", pod.hostInterface, "type", "veth", "peer", "name", "eth0", "netns", pod.netns])
            try LabCommand.run(["ip", "-n", pod.netns, "addr", "add", "\(pod.address)/32", "dev", "eth0"])
        }
        try LabCommand.run(["ip", "-n", pod.netns, "link", "set", "lo", "up"])
        try LabCommand.run(["ip", "-n", pod.netns, "link", "set", "eth0", "up"])
        try LabCommand.run(["ip", "-n", pod.netns, "route", "replace", Self.podGateway, "dev", "eth0", "scope", "link"])
        try LabCommand.run(["ip", "-n", pod.netns, "route", "replace", "default", "via", Self.podGateway, "dev", "eth0"])
        try LabCommand.run(["ip", "-n", node.netns, "link", "set", pod.hostInterface, "up"])
        try LabCommand.run(["ip", "netns", "exec", node.netns, "sysctl", "-qw", "net.ipv4.conf.\(pod.hostInterface).proxy_arp=1"])
        try LabCommand.run(["ip", "-n", node.netns, "route", "replace", "\(pod.address)/32", "dev", pod.hostInterface])
        try writeResolvConf(pod)
    }

    /// The cluster DNS address pods are told (kube-dns's usual VIP); the pod's capture
    /// rules send every DNS query, to whatever server, to ztunnel's proxy on 15053.
    public static let clusterDNS = "10.96.0.10"

    /// `/etc/netns/NETNS/resolv.conf`, which `ip netns exec` mounts over the pod's
    /// `/etc/resolv.conf`: Kubernetes' search path for the pod's namespace.
    private func writeResolvConf(_ pod: LabTopology.Pod) throws(LabError) {
        let directory = "/etc/netns/" + pod.netns
        let text = "search \(pod.namespace).svc.cluster.local svc.cluster.local cluster.local\nnameserver \(Self.clusterDNS)\noptions ndots:5\n"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try text.write(toFile: directory + "/resolv.conf", atomically: true, encoding: .utf8)
        } catch {
            throw .invalid("cannot write \(directory)/resolv.conf: \(error)")
        }
    }

    /// Removes a pod's namespace (its veth pair goes with it) and its route on the node.
    public func remove(pod: LabTopology.Pod) throws(LabError) {
        if let node = topology.node(pod.node) {
            _ = try? LabCommand.status(["ip", "-n", node.netns, "route", "del", "\(pod.address)/32"])
        }
        try LabNamespaces.delete(pod.netns)
    }

    private func addNamespace(_ name: String) throws(LabError) {
        if LabNamespaces.exists(name) { return }
        try LabCommand.run(["ip", "netns", "add", name])
        try LabCommand.run(["ip", "-n", name, "link", "set", "lo", "up"])
    }

    private func linkExists(_ link: String, in namespace: String) throws(LabError) -> Bool {
        try LabCommand.status(["ip", "-n", namespace, "link", "show", link]).status == 0
    }
}

/// The lab's network namespaces as the host lists them.
public enum LabNamespaces {
    /// Whether `/var/run/netns/NAME` exists.
    public static func exists(_ name: String) -> Bool {
        (try? LabCommand.status(["test", "-e", "/var/run/netns/\(name)"]).status) == 0
    }

    /// Every namespace whose name starts with `prefix-`.
    public static func list(prefix: String) -> [String] {
        let output = (try? LabCommand.run(["ip", "netns", "list"])) ?? ""
        return output.split(separator: "\n").compactMap { line in
            let name = String(line.split(separator: " ").first ?? "")
            return name.hasPrefix(prefix + "-") ? name : nil
        }
    }

    /// Kills every process in the namespace, then deletes it and its `/etc/netns/NAME` files.
    public static func delete(_ name: String) throws(LabError) {
        try? FileManager.default.removeItem(atPath: "/etc/netns/" + name)
        guard exists(name) else { return }
        killProcesses(in: name)
        try LabCommand.run(["ip", "netns", "del", name])
    }

    /// SIGKILLs the processes `ip netns pids` lists for `name`.
    public static func killProcesses(in name: String) {
        let pids = (try? LabCommand.run(["ip", "netns", "pids", name])) ?? ""
        for pid in pids.split(separator: "\n").compactMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }) {
            kill(pid, SIGKILL)
        }
    }
}
