import Foundation
import MeshProto

extension IstioAuthorization {
    /// Converts the `istio.security.Authorization` resource ztunnel receives
    /// over xDS. `boundWorkloads` are the workloads (`namespace/name`) whose
    /// `authorization_policies` name this policy; they are what a
    /// `WORKLOAD_SELECTOR` scope applies to.
    public init(_ proto: Istio_Security_Authorization, boundWorkloads: Set<String> = []) throws(PolicyCompileError) {
        let reference = PolicyReference(kind: .authorizationPolicy, namespace: proto.namespace, name: proto.name)
        func fail(_ message: String) -> PolicyCompileError { PolicyCompileError(policy: reference, message: message) }
        let scope: Scope
        switch proto.scope {
        case .global: scope = .global
        case .namespace: scope = .namespace
        case .workloadSelector: scope = .workloads(boundWorkloads)
        case .UNRECOGNIZED(let v): throw fail("unknown scope \(v)")
        }
        let action: Action
        switch proto.action {
        case .allow: action = .allow
        case .deny: action = .deny
        case .UNRECOGNIZED(let v): throw fail("unknown action \(v)")
        }
        func strings(_ list: [Istio_Security_StringMatch]) throws(PolicyCompileError) -> [StringMatch] {
            var out: [StringMatch] = []
            for s in list {
                switch s.matchType {
                case .exact(let v): out.append(.exact(v))
                case .prefix(let v): out.append(.prefix(v))
                case .suffix(let v): out.append(.suffix(v))
                case .presence: out.append(.presence)
                case .none: throw fail("string match without a match type")
                }
            }
            return out
        }
        func cidrs(_ list: [Istio_Security_Address]) throws(PolicyCompileError) -> [CIDR] {
            var out: [CIDR] = []
            for a in list {
                guard let ip = IPAddress(bytes: a.address), Int(a.length) <= ip.family.bitWidth else {
                    throw fail("invalid address of \(a.address.count) bytes with prefix length \(a.length)")
                }
                out.append(CIDR(address: ip, prefixLength: Int(a.length)))
            }
            return out
        }
        func ports(_ list: [UInt32]) throws(PolicyCompileError) -> [UInt16] {
            var out: [UInt16] = []
            for p in list {
                guard let port = UInt16(exactly: p) else { throw fail("port \(p) is out of range") }
                out.append(port)
            }
            return out
        }
        func accounts(_ list: [Istio_Security_ServiceAccountMatch]) -> [ServiceAccount] {
            list.map { ServiceAccount(namespace: $0.namespace, name: $0.serviceAccount) }
        }
        var groups: [Group] = []
        for (index, g) in proto.groups.enumerated() {
            var rules: [[Match]] = []
            for r in g.rules {
                var matches: [Match] = []
                for m in r.matches {
                    var match = Match()
                    match.namespaces = try strings(m.namespaces)
                    match.notNamespaces = try strings(m.notNamespaces)
                    match.principals = try strings(m.principals)
                    match.notPrincipals = try strings(m.notPrincipals)
                    match.serviceAccounts = accounts(m.serviceAccounts)
                    match.notServiceAccounts = accounts(m.notServiceAccounts)
                    match.sourceIPs = try cidrs(m.sourceIps)
                    match.notSourceIPs = try cidrs(m.notSourceIps)
                    match.destinationIPs = try cidrs(m.destinationIps)
                    match.notDestinationIPs = try cidrs(m.notDestinationIps)
                    match.destinationPorts = try ports(m.destinationPorts)
                    match.notDestinationPorts = try ports(m.notDestinationPorts)
                    matches.append(match)
                }
                rules.append(matches)
            }
            groups.append(Group(ruleIndex: index, rules: rules))
        }
        self.init(namespace: proto.namespace, name: proto.name, scope: scope, action: action, groups: groups, dryRun: proto.dryRun)
    }
}

extension IstioAuthorization {
    /// The `istio.security.Authorization` resource a control plane sends to
    /// ztunnel for this policy, the inverse of ``init(_:boundWorkloads:)``.
    ///
    /// Only L4 policies have this form: a scope of `targetRefs`, an AUDIT or
    /// CUSTOM action, a path template or any L7 attribute is refused (lower
    /// the policy with ``AuthorizationPolicy/authorization(for:rootNamespace:)``
    /// for ``EnforcementLayer/l4`` first). A `workloadSelector` scope becomes
    /// `WORKLOAD_SELECTOR`; the control plane lists the policy in the
    /// `authorization_policies` of each selected workload.
    public func proto() throws(PolicyCompileError) -> Istio_Security_Authorization {
        func fail(_ message: String) -> PolicyCompileError { PolicyCompileError(policy: reference, message: message) }
        var proto = Istio_Security_Authorization()
        proto.name = name
        proto.namespace = namespace
        proto.dryRun = dryRun
        switch scope {
        case .global: proto.scope = .global
        case .namespace: proto.scope = .namespace
        case .workloadSelector, .workloads: proto.scope = .workloadSelector
        case .targetRefs: throw fail("a targetRefs policy is enforced by waypoints only and has no L4 form")
        }
        switch action {
        case .allow: proto.action = .allow
        case .deny: proto.action = .deny
        case .audit, .custom: throw fail("AUDIT and CUSTOM policies are not sent to ztunnel")
        }
        func strings(_ list: [StringMatch]) throws(PolicyCompileError) -> [Istio_Security_StringMatch] {
            var out: [Istio_Security_StringMatch] = []
            for m in list {
                var s = Istio_Security_StringMatch()
                switch m {
                case .exact(let v): s.exact = v
                case .prefix(let v): s.prefix = v
                case .suffix(let v): s.suffix = v
                case .presence: s.presence = .init()
                case .pathTemplate(let t): throw fail("path template '\(t)' has no L4 form")
                }
                out.append(s)
            }
            return out
        }
        func addresses(_ list: [CIDR]) -> [Istio_Security_Address] {
            list.map { cidr in
                var a = Istio_Security_Address()
                a.address = Data(cidr.address.bytes)
                a.length = UInt32(cidr.prefixLength)
                return a
            }
        }
        func accounts(_ list: [ServiceAccount]) -> [Istio_Security_ServiceAccountMatch] {
            list.map { account in
                var m = Istio_Security_ServiceAccountMatch()
                m.namespace = account.namespace
                m.serviceAccount = account.name
                return m
            }
        }
        for group in groups {
            var g = Istio_Security_Group()
            for rule in group.rules {
                var rules = Istio_Security_Rules()
                for match in rule {
                    let l7 = !match.requestPrincipals.isEmpty || !match.notRequestPrincipals.isEmpty || !match.remoteIPs.isEmpty
                        || !match.notRemoteIPs.isEmpty || !match.hosts.isEmpty || !match.notHosts.isEmpty || !match.methods.isEmpty
                        || !match.notMethods.isEmpty || !match.paths.isEmpty || !match.notPaths.isEmpty || !match.conditions.isEmpty
                    if l7 { throw fail("rule \(group.ruleIndex) uses L7 attributes, which have no L4 form") }
                    var m = Istio_Security_Match()
                    m.namespaces = try strings(match.namespaces)
                    m.notNamespaces = try strings(match.notNamespaces)
                    m.principals = try strings(match.principals)
                    m.notPrincipals = try strings(match.notPrincipals)
                    m.serviceAccounts = accounts(match.serviceAccounts)
                    m.notServiceAccounts = accounts(match.notServiceAccounts)
                    m.sourceIps = addresses(match.sourceIPs)
                    m.notSourceIps = addresses(match.notSourceIPs)
                    m.destinationIps = addresses(match.destinationIPs)
                    m.notDestinationIps = addresses(match.notDestinationIPs)
                    m.destinationPorts = match.destinationPorts.map(UInt32.init)
                    m.notDestinationPorts = match.notDestinationPorts.map(UInt32.init)
                    rules.matches.append(m)
                }
                g.rules.append(rules)
            }
            proto.groups.append(g)
        }
        return proto
    }
}
