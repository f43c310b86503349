/// A workload's identity in the compiled indexes: namespace and name, hashed
/// without building a `namespace/name` string.
struct WorkloadKey: Hashable, Sendable {
    var namespace: String
    var name: String
}

/// Group ids bucketed by destination port so that a decision only looks at
/// groups that can match the port.
struct PortBuckets: Sendable {
    var anyPort: [Int32] = []
    var byPort: [UInt16: [Int32]] = [:]

    mutating func add(_ id: Int32, ports: [UInt16]?) {
        guard let ports else { anyPort.append(id); return }
        for p in ports { byPort[p, default: []].append(id) }
    }

    var isEmpty: Bool { anyPort.isEmpty && byPort.isEmpty }
}

/// The Istio policies that apply to one workload at one layer.
struct WorkloadAuthorizationIndex: Sendable {
    var custom = PortBuckets()
    var deny = PortBuckets()
    var allow = PortBuckets()
    var audit = PortBuckets()
    /// Policies with action ALLOW (even those whose rules can never match).
    var allowPolicies: [Int32] = []
}

/// Compiled Istio authorization for one enforcement layer: all policies,
/// their groups, and a per-workload index built from the inventory.
struct IstioLayerEngine: Sendable {
    let layer: EnforcementLayer
    var policies: [IstioAuthorization] = []
    var groups: [CompiledGroup] = []
    var byWorkload: [WorkloadKey: WorkloadAuthorizationIndex] = [:]

    init(layer: EnforcementLayer, authorizations: [IstioAuthorization], inventory: Inventory, rootNamespace: String,
         interner: inout StringInterner) {
        self.layer = layer
        self.policies = authorizations.sorted { $0.reference < $1.reference }
        for (pi, p) in policies.enumerated() {
            for g in p.groups {
                let compiled = CompiledGroup(
                    rule: RuleReference(policy: p.reference, section: "rules", index: g.ruleIndex),
                    policyIndex: pi,
                    rules: g.rules.map { $0.map { CompiledMatch($0, interner: &interner) } })
                groups.append(compiled)
            }
        }
        for w in inventory.workloads {
            byWorkload[WorkloadKey(namespace: w.namespace, name: w.name)] = index(for: w, inventory: inventory)
        }
    }

    /// Whether policy `p` applies to workload `w`.
    static func applies(_ p: IstioAuthorization, to w: Workload, inventory: Inventory) -> Bool {
        switch p.scope {
        case .global: return true
        case .namespace: return p.namespace == w.namespace
        case .workloadSelector(let labels):
            return p.namespace == w.namespace && labels.allSatisfy { w.labels[$0.key] == $0.value }
        case .workloads(let keys): return keys.contains(w.key)
        case .targetRefs(let refs):
            guard p.namespace == w.namespace else { return false }
            return refs.contains { ref in
                switch (ref.group, ref.kind) {
                case ("", "Service"), ("core", "Service"):
                    guard let svc = inventory.services.first(where: { $0.namespace == p.namespace && $0.name == ref.name }),
                          !svc.selector.isEmpty else { return false }
                    return svc.selector.allSatisfy { w.labels[$0.key] == $0.value }
                case ("gateway.networking.k8s.io", "Gateway"):
                    return w.labels["gateway.networking.k8s.io/gateway-name"] == ref.name
                default:
                    return false
                }
            }
        }
    }

    /// Builds the index for a workload (also used for workloads unknown to the inventory).
    func index(for w: Workload, inventory: Inventory) -> WorkloadAuthorizationIndex {
        var idx = WorkloadAuthorizationIndex()
        var applicable = Set<Int>()
        for (pi, p) in policies.enumerated() where IstioLayerEngine.applies(p, to: w, inventory: inventory) {
            applicable.insert(pi)
            if p.action == .allow { idx.allowPolicies.append(Int32(pi)) }
        }
        for (gi, g) in groups.enumerated() where applicable.contains(g.policyIndex) {
            let ports = g.possiblePorts
            switch policies[g.policyIndex].action {
            case .allow: idx.allow.add(Int32(gi), ports: ports)
            case .deny: idx.deny.add(Int32(gi), ports: ports)
            case .audit: idx.audit.add(Int32(gi), ports: ports)
            case .custom: idx.custom.add(Int32(gi), ports: ports)
            }
        }
        return idx
    }

    @inline(__always)
    private func firstMatch(_ buckets: PortBuckets, _ src: SourceFacts, _ dst: IPAddress?, _ port: UInt16, _ req: RequestFacts?) -> Int32? {
        var best: Int32?
        if let ids = buckets.byPort[port] {
            for id in ids where groups[Int(id)].matches(src, destination: dst, port: port, request: req) { best = id; break }
        }
        for id in buckets.anyPort {
            if let b = best, b < id { break }
            if groups[Int(id)].matches(src, destination: dst, port: port, request: req) { best = id; break }
        }
        return best
    }

    /// Istio's order: CUSTOM, then DENY, then ALLOW; AUDIT is only recorded.
    func decide(_ idx: WorkloadAuthorizationIndex, source: SourceFacts, destination: IPAddress?, port: UInt16,
                request: RequestFacts?, providers: [String: any CustomAuthorizationProvider]) -> (LayerDecision, RuleReference?) {
        var audit: RuleReference?
        if !idx.audit.isEmpty, let id = firstMatch(idx.audit, source, destination, port, request) {
            audit = groups[Int(id)].rule
        }
        if !idx.custom.isEmpty, let request {
            var ids = idx.custom.anyPort + (idx.custom.byPort[port] ?? [])
            ids.sort()
            for id in ids where groups[Int(id)].matches(source, destination: destination, port: port, request: request) {
                let g = groups[Int(id)]
                guard case .custom(let name) = policies[g.policyIndex].action else { continue }
                let verdict = providers[name]?.check(CustomCheck(rule: g.rule, provider: name, request: request.request)) ?? .deny
                if verdict == .deny {
                    return (LayerDecision(layer: .authorization, verdict: .deny, reason: .customDenied(provider: name, g.rule)), audit)
                }
            }
        }
        if let id = firstMatch(idx.deny, source, destination, port, request) {
            return (LayerDecision(layer: .authorization, verdict: .deny, reason: .rule(groups[Int(id)].rule)), audit)
        }
        if idx.allowPolicies.isEmpty {
            return (LayerDecision(layer: .authorization, verdict: .allow, reason: .noAllowPolicy), audit)
        }
        if let id = firstMatch(idx.allow, source, destination, port, request) {
            return (LayerDecision(layer: .authorization, verdict: .allow, reason: .rule(groups[Int(id)].rule)), audit)
        }
        let refs = idx.allowPolicies.map { policies[Int($0)].reference }
        return (LayerDecision(layer: .authorization, verdict: .deny, reason: .noMatchingAllow(refs)), audit)
    }
}

/// What a CUSTOM provider is asked to decide.
public struct CustomCheck: Sendable {
    /// The CUSTOM rule that matched.
    public var rule: RuleReference
    /// The provider name from `spec.provider.name`.
    public var provider: String
    /// The request being authorized.
    public var request: HTTPRequest
}

/// An external authorizer for Istio CUSTOM policies (ext_authz). It is called
/// synchronously on the decision path, so it should answer from local state;
/// a provider that is not registered denies (fail closed).
public protocol CustomAuthorizationProvider: Sendable {
    /// Allow or deny the request.
    func check(_ check: CustomCheck) -> Verdict
}
