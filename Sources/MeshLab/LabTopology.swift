import MeshControlPlane
import PolicyEngine

/// The lab's shape, computed from the same manifests and the same address
/// plan as the control plane: a wire namespace with a bridge, a namespace per
/// Node joined to the bridge, a namespace per Pod joined to its node by a
/// veth pair. Pure data; ``LabNetwork`` builds it.
public struct LabTopology: Sendable, Hashable, Codable {
    /// A node: a network namespace on the wire.
    public struct Node: Sendable, Hashable, Codable {
        public var name: String
        /// Its network namespace (`/var/run/netns/NAME`).
        public var netns: String
        /// Its address on the wire (from 172.18.0.0/16).
        public var address: String
        /// Its pod CIDR (a /24 from 10.244.0.0/16).
        public var podCIDR: String
        /// The veth end in the wire namespace, attached to the bridge (the node's end is `eth0`).
        public var wireInterface: String
    }

    /// A container of a pod: what runs, as a container runtime would run it (the image is ignored).
    public struct Container: Sendable, Hashable, Codable {
        public var name: String
        public var argv: [String]
        public var env: [String: String]
        /// Its declared TCP `containerPort`s: the lab calls the container started once each
        /// is listening (the readiness a `tcpSocket` probe would check).
        public var ports: [UInt16]

        public init(name: String, argv: [String], env: [String: String], ports: [UInt16] = []) {
            self.name = name
            self.argv = argv
            self.env = env
            self.ports = ports
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            argv = try container.decode([String].self, forKey: .argv)
            env = try container.decode([String: String].self, forKey: .env)
            // A lab recorded before ports were kept has none to wait for.
            ports = try container.decodeIfPresent([UInt16].self, forKey: .ports) ?? []
        }
    }

    /// A pod: a network namespace on its node.
    public struct Pod: Sendable, Hashable, Codable {
        public var namespace: String
        public var name: String
        public var node: String
        public var serviceAccount: String
        /// The workload uid (as the control plane names it); also the ZDS uid.
        public var uid: String
        public var netns: String
        public var address: String
        /// The veth end in the node's namespace (the pod's end is `eth0`).
        public var hostInterface: String
        /// Enrolled in ambient mode (captured by its node's ztunnel).
        public var ambient: Bool
        public var containers: [Container]

        /// `namespace/name`.
        public var key: String { "\(namespace)/\(name)" }
        /// The SPIFFE ID its workload certificate names.
        public func identity(trustDomain: String) -> String { "spiffe://\(trustDomain)/ns/\(namespace)/sa/\(serviceAccount)" }
    }

    /// A Service with a cluster IP (reached through the mesh: ztunnel picks an endpoint).
    public struct Service: Sendable, Hashable, Codable {
        public var namespace: String
        public var name: String
        public var address: String
        public var ports: [UInt16]

        /// `namespace/name`.
        public var key: String { "\(namespace)/\(name)" }
        /// `NAME.NAMESPACE.svc.cluster.local`.
        public var hostname: String { "\(name).\(namespace).svc.cluster.local" }
    }

    /// The prefix of every namespace and the lab's marker (`swm` by default).
    public var prefix: String
    /// The namespace holding the bridge, and the control plane.
    public var wireNetns: String
    /// The bridge's address: the control plane listens here, and it is the nodes' way out.
    public var gatewayAddress: String
    public var nodes: [Node]
    public var pods: [Pod]
    public var services: [Service]

    /// Computes the topology of `state` with `plan`'s addresses. Pods without a node or an
    /// address (pending), on the host network, or ended are left out.
    public static func build(state: ClusterState, plan: AddressPlan, prefix: String = "swm", gateway: String = "172.18.0.1") throws(LabError) -> LabTopology {
        var nodes: [Node] = []
        for node in state.nodes.sorted(by: { $0.name < $1.name }) {
            guard let address = plan.nodeIPs[node.name], let cidr = plan.nodeCIDRs[node.name] else {
                throw .invalid("node \(node.name) has no address or pod CIDR in the plan")
            }
            nodes.append(Node(name: node.name, netns: "\(prefix)-node-\(node.name)", address: address.description, podCIDR: cidr.description,
                              wireInterface: LabNames.interface("w", node.name)))
        }
        let options = MeshOptions()
        var pods: [Pod] = []
        for pod in state.pods.sorted(by: { $0.key < $1.key }) where pod.isMeshCandidate {
            guard let node = pod.nodeName, let address = plan.podIPs[pod.key]?.first(where: { $0.family == .v4 }) else { continue }
            let containers = pod.containers.map { container in
                Container(name: container.name, argv: container.command + container.args,
                          env: Dictionary(container.env.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last }),
                          ports: container.ports.filter { $0.protocol == .tcp }.map(\.containerPort))
            }
            pods.append(Pod(namespace: pod.namespace, name: pod.name, node: node, serviceAccount: pod.serviceAccount, uid: options.workloadUID(of: pod),
                            netns: "\(prefix)-pod-\(pod.namespace)-\(pod.name)", address: address.description,
                            hostInterface: LabNames.interface("p", pod.key), ambient: AmbientEnrollment.isEnrolled(pod, in: state),
                            containers: containers))
        }
        let services = state.services.sorted { $0.key < $1.key }.compactMap { service -> Service? in
            guard let address = plan.serviceIPs[service.key] else { return nil }
            return Service(namespace: service.namespace, name: service.name, address: address.description, ports: service.ports.map(\.port))
        }
        return LabTopology(prefix: prefix, wireNetns: "\(prefix)-wire", gatewayAddress: gateway, nodes: nodes, pods: pods, services: services)
    }

    public func node(_ name: String) -> Node? { nodes.first { $0.name == name } }
    public func pod(_ key: String) -> Pod? { pods.first { $0.key == key } }
    public func pods(on node: String) -> [Pod] { pods.filter { $0.node == node } }
    public func service(_ key: String) -> Service? { services.first { $0.key == key } }
}

/// Names of lab interfaces: at most 15 bytes (IFNAMSIZ), stable for an object.
enum LabNames {
    /// `prefix` + 10 hex digits of a hash of `key`.
    static func interface(_ prefix: String, _ key: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return prefix + String(String(repeating: "0", count: max(0, 16 - hex.count)) + hex).prefix(10)
    }
}

/// Why a lab operation failed.
public enum LabError: Error, Sendable, CustomStringConvertible {
    /// The manifests or the topology cannot be built.
    case invalid(String)
    /// A command failed; `output` is what it printed on stderr.
    case commandFailed(command: String, status: Int32, output: String)
    /// A tool the lab needs is missing.
    case missingTool(String)
    /// Not running as root.
    case notRoot
    /// No lab is up.
    case notRunning
    /// Something did not become ready in time.
    case timedOut(String)

    public var description: String {
        switch self {
        case .invalid(let detail): return detail
        case .commandFailed(let command, let status, let output):
            return "`\(command)` exited with status \(status)" + (output.isEmpty ? "" : ": \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
        case .missingTool(let tool): return "\(tool) is not installed (scripts/lab installs it)"
        case .notRoot: return "the lab needs root (network namespaces, veth pairs, iptables)"
        case .notRunning: return "no lab is up (run `scripts/lab up DIR`)"
        case .timedOut(let what): return "timed out waiting for \(what)"
        }
    }
}
