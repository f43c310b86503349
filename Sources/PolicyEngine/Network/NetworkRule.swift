import Foundation

/// A traffic direction relative to the endpoint a policy selects.
public enum TrafficDirection: String, Hashable, Sendable, CaseIterable {
    case ingress
    case egress

    /// The datapath encoding (0 ingress, 1 egress), as in Cilium's policy key.
    public var datapathValue: UInt8 { self == .ingress ? 0 : 1 }
}

/// Which endpoints a network policy applies to.
enum SubjectSelector: Sendable {
    /// Kubernetes: pods in `namespace` matching the selector on pod labels.
    case pods(namespace: String, LabelSelector)
    /// Cilium: endpoints matching the selector on Cilium labels, restricted to
    /// `namespace` unless nil (clusterwide).
    case endpoints(namespace: String?, LabelSelector)
}

/// One peer form of a network rule, in a representation shared by Kubernetes
/// and Cilium policies.
enum PeerSelector: Sendable, Hashable {
    /// Every peer.
    case any
    /// Kubernetes pod peer: namespace selector nil means `namespace`.
    case pods(LabelSelector, namespaceSelector: LabelSelector?, namespace: String)
    /// Cilium endpoint peer, matched on Cilium labels; `namespace` restricts it.
    case endpoints(LabelSelector, namespace: String?)
    /// A Cilium entity.
    case entity(CiliumNetworkPolicy.Entity)
    /// An address block. Kubernetes `ipBlock` matches any peer address
    /// (`includesClusterPeers`); Cilium CIDR rules match only peers outside the cluster.
    case cidr(CIDR, except: [CIDR], includesClusterPeers: Bool)
}

/// A port (or range, or named port) and protocol of a network rule.
struct PortMatch: Sendable, Hashable {
    enum Ports: Sendable, Hashable {
        case all
        case range(UInt16, UInt16)
        case named(String)
    }

    /// nil means TCP, UDP and SCTP.
    var proto: TransportProtocol?
    var ports: Ports
}

/// A compiled Cilium HTTP rule (regexes matched against the whole value).
struct HTTPMatcher: Sendable {
    var rule: CiliumNetworkPolicy.HTTPRule
    var method: CompiledRegex?
    var path: CompiledRegex?
    var host: CompiledRegex?
    /// (lowercased name, required value or nil for presence).
    var headers: [(String, String?)]

    init(_ rule: CiliumNetworkPolicy.HTTPRule) throws {
        self.rule = rule
        method = try rule.method.map(CompiledRegex.init)
        path = try rule.path.map(CompiledRegex.init)
        host = try rule.host.map(CompiledRegex.init)
        headers = rule.headers.map { h in
            if let colon = h.firstIndex(of: ":") {
                let name = h[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                let value = h[h.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                return (name, value)
            }
            return (h.trimmingCharacters(in: .whitespaces).lowercased(), nil)
        }
    }

    func matches(_ r: HTTPRequest) -> Bool {
        if let method, !method.wholeMatch(r.method) { return false }
        if let path, !path.wholeMatch(r.path) { return false }
        if let host, !host.wholeMatch(r.host) { return false }
        for (name, value) in headers {
            guard let v = r.headers[name] else { return false }
            if let value, v != value { return false }
        }
        return true
    }
}

/// One allow or deny rule of a Kubernetes or Cilium policy.
struct NetworkRule: Sendable {
    var reference: RuleReference
    var direction: TrafficDirection
    var isDeny: Bool
    /// Peers (ORed). Empty selects nothing.
    var peers: [PeerSelector]
    /// Ports (ORed); nil means all ports and protocols.
    var ports: [PortMatch]?
    /// L7 HTTP rules on these ports; nil means no L7 filtering.
    var http: [HTTPMatcher]?
    var authentication: AuthType
}

/// One Kubernetes or Cilium policy in the engine's shared form.
struct CompiledNetworkPolicy: Sendable {
    var reference: PolicyReference
    var subject: SubjectSelector
    /// Whether selecting an endpoint puts it in default deny, per direction.
    var enforces: Set<TrafficDirection>
    var rules: [NetworkRule]
}

