/// A deliberately simple Istio L4 evaluator: for every connection it walks
/// every AuthorizationPolicy in the mesh, checks whether it applies to the
/// destination and evaluates its rules straight from the CRD with string
/// comparisons. It exists as the baseline the benchmark measures
/// ``PolicySet`` against, and as an independent oracle in tests; do not use
/// it on a data path.
public struct NaiveAuthorizationEvaluator: Sendable {
    public let policies: [AuthorizationPolicy]
    public let rootNamespace: String

    public init(policies: [AuthorizationPolicy], rootNamespace: String = "istio-system") {
        self.policies = policies.sorted { $0.reference < $1.reference }
        self.rootNamespace = rootNamespace
    }

    /// The L4 (ztunnel) verdict for `connection` to `destination`.
    public func decide(_ connection: Connection, destination: Workload) -> Verdict {
        var allowPolicies = 0
        var allowed = false
        for p in policies where applies(p, destination) {
            switch p.action {
            case .deny:
                for r in p.rules ?? [] where matches(r, connection, deny: true, policyNamespace: p.namespace) { return .deny }
            case .allow:
                allowPolicies += 1
                if !allowed {
                    for r in p.rules ?? [] where matches(r, connection, deny: false, policyNamespace: p.namespace) { allowed = true; break }
                }
            case .audit, .custom:
                continue  // ztunnel never receives these
            }
        }
        return allowPolicies == 0 || allowed ? .allow : .deny
    }

    private func applies(_ p: AuthorizationPolicy, _ w: Workload) -> Bool {
        guard p.targetRefs.isEmpty else { return false }
        if p.namespace == rootNamespace && p.selector == nil { return true }
        guard p.namespace == w.namespace else { return false }
        guard let selector = p.selector else { return true }
        for (k, v) in selector where w.labels[k] != v { return false }
        return true
    }

    private func match(_ patterns: [String], _ value: String?) -> Bool {
        guard let value else { return false }
        for p in patterns {
            if p == "*" { return true }
            if p.hasPrefix("*") { if value.hasSuffix(p.dropFirst()) { return true } }
            else if p.hasSuffix("*") { if value.hasPrefix(p.dropLast()) { return true } }
            else if value == p { return true }
        }
        return false
    }

    private func inBlocks(_ blocks: [CIDR], _ ip: IPAddress?) -> Bool {
        guard let ip else { return false }
        return blocks.contains { $0.contains(ip) }
    }

    private func matches(_ r: AuthorizationPolicy.Rule, _ c: Connection, deny: Bool, policyNamespace: String) -> Bool {
        if !deny && !AuthorizationPolicy.l7Attributes(of: r).isEmpty { return false }
        let principal = c.sourcePrincipal
        let parts = principal.map(PrincipalInfo.parse)
        let ns = parts?.namespace
        let sa = parts?.serviceAccount
        let srcIP = c.source.address
        let dstIP = c.destination.address
        let port = c.destinationPort
        if !r.from.isEmpty {
            let ok = r.from.contains { s in
                if !s.principals.isEmpty && !match(s.principals, principal) { return false }
                if !s.notPrincipals.isEmpty && match(s.notPrincipals, principal) { return false }
                if !s.namespaces.isEmpty && !match(s.namespaces, ns) { return false }
                if !s.notNamespaces.isEmpty && match(s.notNamespaces, ns) { return false }
                func saMatch(_ list: [String]) -> Bool {
                    list.contains { entry in
                        let pair = entry.split(separator: "/", maxSplits: 1).map(String.init)
                        let (wantNS, wantSA) = pair.count == 2 ? (pair[0], pair[1]) : (policyNamespace, pair[0])
                        return ns == wantNS && sa == wantSA
                    }
                }
                if !s.serviceAccounts.isEmpty && !saMatch(s.serviceAccounts) { return false }
                if !s.notServiceAccounts.isEmpty && saMatch(s.notServiceAccounts) { return false }
                if !s.ipBlocks.isEmpty && !inBlocks(s.ipBlocks, srcIP) { return false }
                if !s.notIpBlocks.isEmpty && inBlocks(s.notIpBlocks, srcIP) { return false }
                return true
            }
            if !ok { return false }
        }
        if !r.to.isEmpty {
            let ok = r.to.contains { o in
                if !o.ports.isEmpty && !o.ports.contains(port) { return false }
                if !o.notPorts.isEmpty && o.notPorts.contains(port) { return false }
                return true
            }
            if !ok { return false }
        }
        for w in r.when {
            switch w.key {
            case "source.principal":
                if !w.values.isEmpty && !match(w.values, principal) { return false }
                if !w.notValues.isEmpty && match(w.notValues, principal) { return false }
            case "source.namespace":
                if !w.values.isEmpty && !match(w.values, ns) { return false }
                if !w.notValues.isEmpty && match(w.notValues, ns) { return false }
            case "source.ip":
                if !w.values.isEmpty && !inBlocks(w.values.compactMap { CIDR($0) }, srcIP) { return false }
                if !w.notValues.isEmpty && inBlocks(w.notValues.compactMap { CIDR($0) }, srcIP) { return false }
            case "destination.ip":
                if !w.values.isEmpty && !inBlocks(w.values.compactMap { CIDR($0) }, dstIP) { return false }
                if !w.notValues.isEmpty && inBlocks(w.notValues.compactMap { CIDR($0) }, dstIP) { return false }
            case "destination.port":
                if !w.values.isEmpty && !w.values.contains(String(port)) { return false }
                if !w.notValues.isEmpty && w.notValues.contains(String(port)) { return false }
            default:
                continue  // L7 key: dropped from DENY rules at L4 (ALLOW rules were skipped above)
            }
        }
        return true
    }
}
