import MeshIdentity

/// A simple L4 authorization policy (Istio security.proto `Authorization`, the subset ztunnel's local config uses).
///
/// `rules` is an OR of rules; a rule is an AND of clauses; a clause is an OR of matches.
public struct Authorization: Sendable, Hashable {
    /// Where the policy applies.
    public enum Scope: String, Sendable, Hashable, Codable {
        /// Every workload in the mesh.
        case global = "Global"
        /// Workloads in the policy's namespace.
        case namespace = "Namespace"
        /// Workloads that list the policy in ``Workload/authorizationPolicies``.
        case workloadSelector = "WorkloadSelector"
    }

    /// What a match does.
    public enum Action: String, Sendable, Hashable, Codable {
        case allow = "Allow"
        case deny = "Deny"
    }

    public var name: String
    public var namespace: String
    public var scope: Scope
    public var action: Action
    public var rules: [[[AuthorizationMatch]]]
    /// A dry-run policy is stored and reported but never decides a connection.
    public var dryRun: Bool = false

    public init(name: String, namespace: String, scope: Scope = .namespace, action: Action = .allow, rules: [[[AuthorizationMatch]]] = []) {
        self.name = name
        self.namespace = namespace
        self.scope = scope
        self.action = action
        self.rules = rules
    }

    /// `namespace/name`.
    public var key: String { "\(namespace)/\(name)" }

    /// True when the policy applies to `workload`.
    public func applies(to workload: Workload) -> Bool {
        switch scope {
        case .global: return true
        case .namespace: return namespace == workload.namespace
        case .workloadSelector: return workload.authorizationPolicies.contains(key)
        }
    }

    /// True when the connection matches any rule (a policy without rules matches nothing).
    public func matches(_ connection: L4Connection) -> Bool {
        rules.contains { clauses in
            clauses.allSatisfy { matches in matches.isEmpty || matches.contains { $0.matches(connection) } }
        }
    }
}

/// One match of an ``Authorization`` rule; every non-empty field must hold.
public struct AuthorizationMatch: Sendable, Hashable {
    public var namespaces: [String]
    public var notNamespaces: [String]
    /// Principals as `<td>/ns/<ns>/sa/<sa>` (or a full SPIFFE ID); `*` may lead or trail.
    public var principals: [String]
    public var notPrincipals: [String]
    public var destinationPorts: [UInt16]
    public var notDestinationPorts: [UInt16]
    /// Ranges the connection's source address must (or must not) be in.
    public var sourceIPs: [AddressRange]
    public var notSourceIPs: [AddressRange]
    /// Ranges the connection's destination address must (or must not) be in.
    public var destinationIPs: [AddressRange]
    public var notDestinationIPs: [AddressRange]

    public init(namespaces: [String] = [], notNamespaces: [String] = [], principals: [String] = [], notPrincipals: [String] = [], destinationPorts: [UInt16] = [], notDestinationPorts: [UInt16] = [],
                sourceIPs: [AddressRange] = [], notSourceIPs: [AddressRange] = [], destinationIPs: [AddressRange] = [], notDestinationIPs: [AddressRange] = []) {
        self.namespaces = namespaces
        self.notNamespaces = notNamespaces
        self.principals = principals
        self.notPrincipals = notPrincipals
        self.destinationPorts = destinationPorts
        self.notDestinationPorts = notDestinationPorts
        self.sourceIPs = sourceIPs
        self.notSourceIPs = notSourceIPs
        self.destinationIPs = destinationIPs
        self.notDestinationIPs = notDestinationIPs
    }

    func matches(_ connection: L4Connection) -> Bool {
        let namespace = connection.source?.istioNamespace
        let principal = connection.source.map { String($0.description.dropFirst("spiffe://".count)) }
        if !namespaces.isEmpty, !(namespace.map { n in namespaces.contains { Self.glob($0, n) } } ?? false) { return false }
        if let namespace, notNamespaces.contains(where: { Self.glob($0, namespace) }) { return false }
        if !principals.isEmpty, !(principal.map { p in principals.contains { Self.glob($0, p) } } ?? false) { return false }
        if let principal, notPrincipals.contains(where: { Self.glob($0, principal) }) { return false }
        if !destinationPorts.isEmpty, !destinationPorts.contains(connection.destinationPort) { return false }
        if notDestinationPorts.contains(connection.destinationPort) { return false }
        // An absent address fails positive lists and passes negative ones.
        if !sourceIPs.isEmpty, !(connection.sourceAddress.map { a in sourceIPs.contains { $0.contains(a) } } ?? false) { return false }
        if let a = connection.sourceAddress, notSourceIPs.contains(where: { $0.contains(a) }) { return false }
        let destination = connection.destinationAddress ?? connection.destination.workloadIPs.first
        if !destinationIPs.isEmpty, !(destination.map { a in destinationIPs.contains { $0.contains(a) } } ?? false) { return false }
        if let a = destination, notDestinationIPs.contains(where: { $0.contains(a) }) { return false }
        return true
    }

    static func glob(_ pattern: String, _ value: String) -> Bool {
        let pattern = pattern.hasPrefix("spiffe://") ? String(pattern.dropFirst("spiffe://".count)) : pattern
        if pattern == "*" { return true }
        if pattern.hasPrefix("*") { return value.hasSuffix(pattern.dropFirst()) }
        if pattern.hasSuffix("*") { return value.hasPrefix(pattern.dropLast()) }
        return pattern == value
    }
}

/// The facts an L4 decision looks at.
public struct L4Connection: Sendable, Hashable {
    /// The verified source identity (nil for plaintext sources).
    public var source: SPIFFEID?
    /// The destination workload.
    public var destination: Workload
    /// The destination port.
    public var destinationPort: UInt16
    /// The source's IP address, textual, when known.
    public var sourceAddress: String?
    /// The destination IP address, textual (the destination workload's first address when nil).
    public var destinationAddress: String?

    public init(source: SPIFFEID?, destination: Workload, destinationPort: UInt16, sourceAddress: String? = nil, destinationAddress: String? = nil) {
        self.source = source
        self.destination = destination
        self.destinationPort = destinationPort
        self.sourceAddress = sourceAddress
        self.destinationAddress = destinationAddress
    }
}

/// An L4 authorization outcome with the policy that decided it.
public enum L4Decision: Sendable, Hashable {
    case allow(policy: String?)
    case deny(reason: String)

    public var isAllowed: Bool { if case .allow = self { return true } else { return false } }
}

extension Sequence where Element == Authorization {
    /// Istio's L4 semantics: a matching DENY denies; if any ALLOW applies, one must match; otherwise allow.
    public func evaluate(_ connection: L4Connection) -> L4Decision {
        let applicable = filter { !$0.dryRun && $0.applies(to: connection.destination) }
        if let deny = applicable.first(where: { $0.action == .deny && $0.matches(connection) }) {
            return .deny(reason: "denied by policy \(deny.key)")
        }
        let allows = applicable.filter { $0.action == .allow }
        if allows.isEmpty { return .allow(policy: nil) }
        if let allow = allows.first(where: { $0.matches(connection) }) { return .allow(policy: allow.key) }
        return .deny(reason: "no ALLOW policy matches (\(allows.map(\.key).joined(separator: ", ")))")
    }
}
