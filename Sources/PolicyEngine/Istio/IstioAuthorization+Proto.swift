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
