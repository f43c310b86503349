/// Transport protocols that network policies can name.
public enum TransportProtocol: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case tcp = "TCP"
    case udp = "UDP"
    case sctp = "SCTP"

    /// The IP protocol number used by the datapath (6, 17, 132).
    public var ipProtocolNumber: UInt8 {
        switch self {
        case .tcp: return 6
        case .udp: return 17
        case .sctp: return 132
        }
    }

    public var description: String { rawValue }
}

/// A named container port of a workload (`containerPort` with a `name`).
public struct NamedPort: Hashable, Sendable {
    public var name: String
    public var port: UInt16
    public var `protocol`: TransportProtocol

    public init(name: String, port: UInt16, protocol: TransportProtocol = .tcp) {
        self.name = name
        self.port = port
        self.protocol = `protocol`
    }
}

/// A workload (a pod) as policies see it: where it lives, its labels, its
/// service account, its addresses and its named ports.
public struct Workload: Hashable, Sendable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public var labels: Labels
    public var serviceAccount: String
    public var addresses: [IPAddress]
    public var namedPorts: [NamedPort]

    public init(namespace: String, name: String, labels: Labels = [:], serviceAccount: String = "default",
                addresses: [IPAddress] = [], namedPorts: [NamedPort] = []) {
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.serviceAccount = serviceAccount
        self.addresses = addresses
        self.namedPorts = namedPorts
    }

    /// `namespace/name`, the key used by the inventory.
    public var key: String { "\(namespace)/\(name)" }

    /// The Istio principal of this workload, `<trustDomain>/ns/<ns>/sa/<sa>`.
    public func principal(trustDomain: String) -> String {
        "\(trustDomain)/ns/\(namespace)/sa/\(serviceAccount)"
    }

    /// The port number a named port resolves to for `proto`, if the workload declares it.
    public func resolve(namedPort: String, protocol proto: TransportProtocol) -> UInt16? {
        namedPorts.first { $0.name == namedPort && $0.protocol == proto }?.port
    }

    public var description: String { key }
}

/// A namespace and its labels. `kubernetes.io/metadata.name` is always present.
public struct Namespace: Hashable, Sendable {
    public var name: String
    public var labels: Labels

    public init(name: String, labels: Labels = [:]) {
        self.name = name
        var l = labels
        l["kubernetes.io/metadata.name"] = name
        self.labels = l
    }
}

/// A Kubernetes Service (only what policy needs: its pod selector), used to
/// resolve AuthorizationPolicy `targetRefs` of kind Service.
public struct Service: Hashable, Sendable {
    public var namespace: String
    public var name: String
    public var selector: Labels

    public init(namespace: String, name: String, selector: Labels) {
        self.namespace = namespace
        self.name = name
        self.selector = selector
    }
}

/// Peers that are not pods: Cilium's reserved entities.
public enum ReservedEntity: String, Hashable, Sendable, CaseIterable {
    case host
    case remoteNode = "remote-node"
    case health
    case `init`
    case unmanaged
    case kubeAPIServer = "kube-apiserver"
    case ingress

    /// The reserved numeric identity Cilium uses for this entity.
    public var identity: SecurityIdentity {
        switch self {
        case .host: return .host
        case .remoteNode: return .remoteNode
        case .health: return .health
        case .`init`: return .initializing
        case .unmanaged: return .unmanaged
        case .kubeAPIServer: return .kubeAPIServer
        case .ingress: return .ingress
        }
    }
}

/// Everything policies are evaluated against: namespaces, workloads, services
/// and the addresses of reserved entities (hosts, remote nodes, ...).
public struct Inventory: Sendable {
    public var namespaces: [String: Namespace]
    public var workloads: [Workload]
    public var services: [Service]
    /// Addresses that belong to reserved entities (e.g. node IPs to `.host`).
    public var reservedAddresses: [ReservedEntity: [IPAddress]]

    public init(namespaces: [Namespace] = [], workloads: [Workload] = [], services: [Service] = [],
                reservedAddresses: [ReservedEntity: [IPAddress]] = [:]) {
        var ns: [String: Namespace] = [:]
        for n in namespaces { ns[n.name] = n }
        // A workload's namespace exists even if no manifest declared it.
        for w in workloads where ns[w.namespace] == nil { ns[w.namespace] = Namespace(name: w.namespace) }
        self.namespaces = ns
        self.workloads = workloads
        self.services = services
        self.reservedAddresses = reservedAddresses
    }

    /// Labels of a namespace (only `kubernetes.io/metadata.name` if undeclared).
    public func namespaceLabels(_ name: String) -> Labels {
        namespaces[name]?.labels ?? Namespace(name: name).labels
    }

    /// The workload `namespace/name`, if known.
    public func workload(_ key: String) -> Workload? {
        workloads.first { $0.key == key }
    }

    /// The peer `text` names, as a command line or a config file gives it: an
    /// IP address (`.external`; ``PolicySet/normalize(_:)`` resolves it to the
    /// workload or reserved entity that owns it) or `namespace/name` of a known
    /// workload. Nil for anything else.
    public func peer(_ text: String) -> Peer? {
        if let address = IPAddress(text) { return .external(address) }
        return workload(text).map(Peer.workload)
    }
}
