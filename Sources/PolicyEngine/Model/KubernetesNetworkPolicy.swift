/// A Kubernetes `networking.k8s.io/v1` NetworkPolicy.
public struct NetworkPolicy: Hashable, Sendable {
    /// A policy direction.
    public enum PolicyType: String, Hashable, Sendable {
        case ingress = "Ingress"
        case egress = "Egress"
    }

    /// One `from`/`to` peer. Exactly one of the forms is set.
    public enum Peer: Hashable, Sendable {
        /// `podSelector` and/or `namespaceSelector`. A nil namespace selector
        /// means "the policy's own namespace".
        case pods(podSelector: LabelSelector, namespaceSelector: LabelSelector?)
        /// `ipBlock` with optional `except` prefixes.
        case ipBlock(cidr: CIDR, except: [CIDR])
    }

    /// A `ports` entry. A nil `port` means every port of the protocol.
    public struct Port: Hashable, Sendable {
        /// A port number or a named container port.
        public enum Value: Hashable, Sendable {
            case number(UInt16)
            case named(String)
        }

        public var `protocol`: TransportProtocol
        public var port: Value?
        public var endPort: UInt16?

        public init(protocol: TransportProtocol = .tcp, port: Value? = nil, endPort: UInt16? = nil) {
            self.protocol = `protocol`
            self.port = port
            self.endPort = endPort
        }
    }

    /// An ingress or egress rule. Empty `peers` means all peers; empty `ports`
    /// means all ports.
    public struct Rule: Hashable, Sendable {
        public var peers: [Peer]
        public var ports: [Port]

        public init(peers: [Peer] = [], ports: [Port] = []) {
            self.peers = peers
            self.ports = ports
        }
    }

    public var namespace: String
    public var name: String
    public var podSelector: LabelSelector
    public var policyTypes: Set<PolicyType>
    public var ingress: [Rule]
    public var egress: [Rule]

    /// `policyTypes` defaults as in Kubernetes: Ingress always, Egress when
    /// egress rules are present.
    public init(namespace: String, name: String, podSelector: LabelSelector = .everything,
                policyTypes: Set<PolicyType>? = nil, ingress: [Rule] = [], egress: [Rule] = []) {
        self.namespace = namespace
        self.name = name
        self.podSelector = podSelector
        self.policyTypes = policyTypes ?? (egress.isEmpty ? [.ingress] : [.ingress, .egress])
        self.ingress = ingress
        self.egress = egress
    }

    public var reference: PolicyReference { PolicyReference(kind: .networkPolicy, namespace: namespace, name: name) }
}
