/// The kinds of policy the engine understands.
public enum PolicyKind: String, Hashable, Sendable, CaseIterable {
    case authorizationPolicy = "AuthorizationPolicy"
    case networkPolicy = "NetworkPolicy"
    case ciliumNetworkPolicy = "CiliumNetworkPolicy"
    case ciliumClusterwideNetworkPolicy = "CiliumClusterwideNetworkPolicy"
}

/// Names one policy object: kind, namespace (empty for cluster-wide) and name.
public struct PolicyReference: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var kind: PolicyKind
    public var namespace: String
    public var name: String

    public init(kind: PolicyKind, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    public static func < (a: PolicyReference, b: PolicyReference) -> Bool {
        (a.kind.rawValue, a.namespace, a.name) < (b.kind.rawValue, b.namespace, b.name)
    }

    public var description: String {
        namespace.isEmpty ? "\(kind.rawValue) \(name)" : "\(kind.rawValue) \(namespace)/\(name)"
    }
}

/// Names one rule inside a policy: the list it sits in (`rules`, `ingress`,
/// `egress`, `ingressDeny`, `egressDeny`) and its zero-based index.
public struct RuleReference: Hashable, Sendable, CustomStringConvertible {
    public var policy: PolicyReference
    public var section: String
    public var index: Int

    public init(policy: PolicyReference, section: String, index: Int) {
        self.policy = policy
        self.section = section
        self.index = index
    }

    public var description: String { "\(policy) \(section)[\(index)]" }
}
