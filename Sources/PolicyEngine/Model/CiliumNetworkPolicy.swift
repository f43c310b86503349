/// A Cilium `cilium.io/v2` CiliumNetworkPolicy (or, with an empty namespace,
/// a CiliumClusterwideNetworkPolicy).
///
/// Selectors use Cilium's label names; the `k8s:` source prefix is accepted
/// and dropped. A namespaced policy scopes its endpoint selectors to its own
/// namespace unless they name `io.kubernetes.pod.namespace`.
public struct CiliumNetworkPolicy: Hashable, Sendable {
    /// Cilium entities usable in `fromEntities` / `toEntities`.
    public enum Entity: String, Hashable, Sendable, CaseIterable {
        case all, world, cluster, host, health, `init`, unmanaged
        case remoteNode = "remote-node"
        case kubeAPIServer = "kube-apiserver"
        case ingress
    }

    /// A CIDR with exceptions (`fromCIDRSet` / `toCIDRSet`; plain `fromCIDR`
    /// entries have no exceptions).
    public struct CIDRRule: Hashable, Sendable {
        public var cidr: CIDR
        public var except: [CIDR]

        public init(cidr: CIDR, except: [CIDR] = []) {
            self.cidr = cidr
            self.except = except
        }
    }

    /// One `toPorts[].ports[]` entry. `port` 0 means every port;
    /// a nil protocol means ANY (TCP, UDP and SCTP).
    public struct PortProtocol: Hashable, Sendable {
        public var port: UInt16
        public var namedPort: String?
        public var endPort: UInt16?
        public var `protocol`: TransportProtocol?

        public init(port: UInt16 = 0, namedPort: String? = nil, endPort: UInt16? = nil, protocol: TransportProtocol? = nil) {
            self.port = port
            self.namedPort = namedPort
            self.endPort = endPort
            self.protocol = `protocol`
        }
    }

    /// One `rules.http[]` entry. `method`, `path` and `host` are regular
    /// expressions matched against the whole value; `headers` are `Name` (must
    /// be present) or `Name: value` (must equal).
    public struct HTTPRule: Hashable, Sendable {
        public var method: String?
        public var path: String?
        public var host: String?
        public var headers: [String]

        public init(method: String? = nil, path: String? = nil, host: String? = nil, headers: [String] = []) {
            self.method = method
            self.path = path
            self.host = host
            self.headers = headers
        }
    }

    /// One `toPorts` entry: ports, optionally with L7 HTTP rules (nil = no L7).
    public struct PortRule: Hashable, Sendable {
        public var ports: [PortProtocol]
        public var http: [HTTPRule]?

        public init(ports: [PortProtocol], http: [HTTPRule]? = nil) {
            self.ports = ports
            self.http = http
        }
    }

    /// `authentication.mode`.
    public enum AuthenticationMode: String, Hashable, Sendable {
        case disabled
        case required
        case testAlwaysFail = "test-always-fail"
    }

    /// An ingress, egress, ingressDeny or egressDeny rule. All peer lists are
    /// ORed; a rule with no peer list and no ports selects nothing; a rule with
    /// ports but no peer list applies to all peers.
    public struct Rule: Hashable, Sendable {
        public var endpoints: [LabelSelector]?
        public var entities: [Entity]?
        public var cidrs: [CIDRRule]?
        public var toPorts: [PortRule]?
        public var authentication: AuthenticationMode?

        public init(endpoints: [LabelSelector]? = nil, entities: [Entity]? = nil, cidrs: [CIDRRule]? = nil,
                    toPorts: [PortRule]? = nil, authentication: AuthenticationMode? = nil) {
            self.endpoints = endpoints
            self.entities = entities
            self.cidrs = cidrs
            self.toPorts = toPorts
            self.authentication = authentication
        }

        /// True when the rule names no peer at all (applies to all peers if it has ports).
        public var hasNoPeers: Bool { endpoints == nil && entities == nil && cidrs == nil }
    }

    /// `enableDefaultDeny`: nil fields mean "true if the policy has rules in that direction".
    public struct DefaultDeny: Hashable, Sendable {
        public var ingress: Bool?
        public var egress: Bool?

        public init(ingress: Bool? = nil, egress: Bool? = nil) {
            self.ingress = ingress
            self.egress = egress
        }
    }

    /// Empty for CiliumClusterwideNetworkPolicy.
    public var namespace: String
    public var name: String
    public var endpointSelector: LabelSelector
    public var ingress: [Rule]?
    public var egress: [Rule]?
    public var ingressDeny: [Rule]?
    public var egressDeny: [Rule]?
    public var enableDefaultDeny: DefaultDeny

    public init(namespace: String, name: String, endpointSelector: LabelSelector = .everything,
                ingress: [Rule]? = nil, egress: [Rule]? = nil, ingressDeny: [Rule]? = nil, egressDeny: [Rule]? = nil,
                enableDefaultDeny: DefaultDeny = DefaultDeny()) {
        self.namespace = namespace
        self.name = name
        self.endpointSelector = endpointSelector
        self.ingress = ingress
        self.egress = egress
        self.ingressDeny = ingressDeny
        self.egressDeny = egressDeny
        self.enableDefaultDeny = enableDefaultDeny
    }

    public var reference: PolicyReference {
        PolicyReference(kind: namespace.isEmpty ? .ciliumClusterwideNetworkPolicy : .ciliumNetworkPolicy, namespace: namespace, name: name)
    }
}
