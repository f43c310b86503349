/// A workload's identity in the compiled indexes: namespace and name, hashed
/// without building a `namespace/name` string.
struct WorkloadKey: Hashable, Sendable {
    var namespace: String
    var name: String
}

/// What a group requires of a connection before it can match, used to bucket
/// it: the destination ports it can match (nil = any) and, when every way of
/// matching names exact principals (or exact namespaces), those interned ids.
struct GroupKey: Sendable {
    var ports: [UInt16]?
    var principals: [Int32]?
    var namespaces: [Int32]?
}

/// Group ids bucketed by (principal | namespace | nothing) × (port | any
/// port), so a decision looks only at groups that can match the connection.
struct GroupBuckets: Sendable {
    private var lists: [UInt64: [Int32]] = [:]
    private var hasPrincipalKeys = false
    private var hasNamespaceKeys = false

    private static let anyPort: UInt64 = 0x1_0000

    @inline(__always)
    private static func key(_ kind: UInt64, _ port: UInt64, _ id: Int32) -> UInt64 {
        kind << 56 | port << 32 | UInt64(UInt32(bitPattern: id))
    }

    var isEmpty: Bool { lists.isEmpty }

    mutating func add(_ group: Int32, _ k: GroupKey) {
        let ports: [UInt64] = k.ports.map { $0.map(UInt64.init) } ?? [GroupBuckets.anyPort]
        let (kind, ids): (UInt64, [Int32]) = k.principals.map { (1, $0) } ?? k.namespaces.map { (2, $0) } ?? (0, [0])
        if kind == 1 { hasPrincipalKeys = true }
        if kind == 2 { hasNamespaceKeys = true }
        for port in ports {
            for id in Set(ids) { lists[GroupBuckets.key(kind, port, id), default: []].append(group) }
        }
    }

    /// The first group, probing the most selective lists first (exact
    /// principal, exact namespace, then the rest; the port before any port),
    /// for which `matches` holds.
    @inline(__always)
    func first(port: UInt16, principal: Int32, namespace: Int32, where matches: (Int32) -> Bool) -> Int32? {
        if lists.isEmpty { return nil }
        for p in [UInt64(port), GroupBuckets.anyPort] {
            if hasPrincipalKeys, principal >= 0, let l = lists[GroupBuckets.key(1, p, principal)] {
                for id in l where matches(id) { return id }
            }
            if hasNamespaceKeys, namespace >= 0, let l = lists[GroupBuckets.key(2, p, namespace)] {
                for id in l where matches(id) { return id }
            }
            if let l = lists[GroupBuckets.key(0, p, 0)] {
                for id in l where matches(id) { return id }
            }
        }
        return nil
    }

    /// Every group id, ascending.
    var all: [Int32] { Set(lists.values.joined()).sorted() }
}

/// The Istio policies that apply to one workload at one layer. A class so
/// that handing it to the decision path costs one reference, not a copy of
/// every bucket; it is never mutated after construction.
final class WorkloadAuthorizationIndex: Sendable {
    let custom: GroupBuckets
    let deny: GroupBuckets
    let allow: GroupBuckets
    let audit: GroupBuckets
    /// Policies with action ALLOW (even those whose rules can never match).
    let allowPolicies: [Int32]

    init(custom: GroupBuckets, deny: GroupBuckets, allow: GroupBuckets, audit: GroupBuckets, allowPolicies: [Int32]) {
        self.custom = custom
        self.deny = deny
        self.allow = allow
        self.audit = audit
        self.allowPolicies = allowPolicies
    }
}

/// Compiled Istio authorization for one enforcement layer: all policies,
/// their groups as a flat program, and a per-workload index built from the inventory.
struct IstioLayerEngine: Sendable {
    let layer: EnforcementLayer
    /// Per policy (sorted by reference): reference, action and scope.
    private var references: [PolicyReference] = []
    private var actions: [IstioAuthorization.Action] = []
    private var scopes: [IstioAuthorization.Scope] = []
    private var namespaces: [String] = []
    private var program = IstioProgram()
    /// Bucket keys of every group, stored compactly: ports (count -1 = any
    /// port) and ids (kind 0 none, 1 principals, 2 namespaces) as spans of pools.
    private var keyRecords: [(ports: Span, ids: Span, kind: UInt8)] = []
    private var keyPorts: [UInt16] = []
    private var keyIDs: [Int32] = []
    private var groupsByPolicy: [[Int32]] = []
    private var policiesByNamespace: [String: [Int]] = [:]
    private var clusterScoped: [Int] = []
    /// Per-inventory-workload buckets, all in one table keyed by
    /// (workload slot, action, key kind, port, principal/namespace id).
    private var table = SpanTable()
    /// Per slot: ALLOW policies (span of `allowPool`), CUSTOM groups (span of
    /// `customPool`) and which (action, kind, port-or-any) keys exist.
    private var slotInfo: [SlotInfo] = []
    private var allowPool: [Int32] = []
    private var customPool: [Int32] = []
    private var slots: [WorkloadKey: Int32] = [:]
    private var slotsByAddress = SpanTable()
    private var slotKeys: [WorkloadKey] = []

    struct SlotInfo: Sendable {
        var allowPolicies: Span
        var customGroups: Span
        /// Bit `(action * 3 + kind) * 2 + (anyPort ? 1 : 0)`.
        var present: UInt32
    }

    enum ActionCode: UInt64 { case deny = 0, allow = 1, audit = 2, custom = 3 }

    static let maxSlots = 1 << 20
    static let maxID = 1 << 23

    @inline(__always)
    static func tableKey(slot: Int32, action: ActionCode, kind: UInt64, port: UInt64, id: Int32) -> UInt64 {
        UInt64(slot) << 44 | action.rawValue << 42 | kind << 40 | port << 23 | UInt64(UInt32(bitPattern: id) & 0x7F_FFFF)
    }

    init(layer: EnforcementLayer, authorizations: [IstioAuthorization], inventory: Inventory, interner: inout StringInterner) {
        self.layer = layer
        // Dry-run policies are never enforced.
        for (pi, p) in authorizations.filter({ !$0.dryRun }).sorted(by: { $0.reference < $1.reference }).enumerated() {
            references.append(p.reference)
            actions.append(p.action)
            scopes.append(p.scope)
            namespaces.append(p.namespace)
            var ids: [Int32] = []
            for g in p.groups {
                ids.append(Int32(program.add(g, policyIndex: pi, interner: &interner)))
                let k = IstioProgram.key(g, interner: &interner)
                var ports = Span(start: Int32(keyPorts.count), count: -1)
                if let p = k.ports { ports.count = Int32(p.count); keyPorts += p }
                let kind: UInt8 = k.principals != nil ? 1 : (k.namespaces != nil ? 2 : 0)
                let list = k.principals ?? k.namespaces ?? []
                keyRecords.append((ports, Span(start: Int32(keyIDs.count), count: Int32(list.count)), kind))
                keyIDs += list
            }
            groupsByPolicy.append(ids)
            switch p.scope {
            case .global, .workloads: clusterScoped.append(pi)
            case .namespace, .workloadSelector, .targetRefs: policiesByNamespace[p.namespace, default: []].append(pi)
            }
        }
        if inventory.workloads.count < IstioLayerEngine.maxSlots && interner.ids.count < IstioLayerEngine.maxID {
            buildTable(inventory)
        }
    }

    private mutating func buildTable(_ inventory: Inventory) {
        var pairs: [(UInt64, Int32)] = []
        var addressPairs: [(UInt64, Int32)] = []
        for w in inventory.workloads {
            let key = WorkloadKey(namespace: w.namespace, name: w.name)
            guard slots[key] == nil else { continue }
            let slot = Int32(slotKeys.count)
            slots[key] = slot
            slotKeys.append(key)
            if let a = w.addresses.first { addressPairs.append((IstioLayerEngine.addressKey(a), slot)) }
            var present: UInt32 = 0
            let allowStart = Int32(allowPool.count)
            let customStart = Int32(customPool.count)
            let candidates = ((policiesByNamespace[w.namespace] ?? []) + clusterScoped).sorted()
            for pi in candidates where IstioLayerEngine.applies(scopes[pi], namespace: namespaces[pi], to: w, inventory: inventory) {
                let action: ActionCode
                switch actions[pi] {
                case .deny: action = .deny
                case .allow: action = .allow; allowPool.append(Int32(pi))
                case .audit: action = .audit
                case .custom: action = .custom
                }
                for gi in groupsByPolicy[pi] {
                    if action == .custom { customPool.append(gi) }
                    let k = groupKey(gi)
                    let (kind, ids): (UInt64, [Int32]) = k.principals.map { (1, $0) } ?? k.namespaces.map { (2, $0) } ?? (0, [0])
                    for port in k.ports.map({ $0.map(UInt64.init) }) ?? [0x1_0000] {
                        present |= 1 << UInt32((action.rawValue * 3 + kind) * 2 + (port == 0x1_0000 ? 1 : 0))
                        for id in ids {
                            pairs.append((IstioLayerEngine.tableKey(slot: slot, action: action, kind: kind, port: port, id: id), gi))
                        }
                    }
                }
            }
            slotInfo.append(SlotInfo(allowPolicies: Span(start: allowStart, count: Int32(allowPool.count) - allowStart),
                                     customGroups: Span(start: customStart, count: Int32(customPool.count) - customStart),
                                     present: present))
        }
        slotsByAddress = SpanTable(pairs: addressPairs)
        table = SpanTable(pairs: pairs)
    }

    @inline(__always)
    static func addressKey(_ a: IPAddress) -> UInt64 {
        a.family == .v4 ? a.low : (a.high &* 0x9E37_79B9_7F4A_7C15) ^ a.low ^ 1 << 63
    }

    /// The slot of a workload of the inventory: by its address (confirmed by
    /// namespace and name), else by namespace and name.
    @inline(__always)
    private func slot(of w: Workload) -> Int32? {
        if let a = w.addresses.first, let span = slotsByAddress.lookup(IstioLayerEngine.addressKey(a)) {
            for k in span.range {
                let s = slotsByAddress.pool[k]
                let key = slotKeys[Int(s)]
                if key.namespace == w.namespace && key.name == w.name { return s }
            }
        }
        return slots[WorkloadKey(namespace: w.namespace, name: w.name)]
    }

    @inline(__always)
    private func firstMatch(slot: Int32, _ action: ActionCode, _ present: UInt32, _ src: SourceFacts, _ dst: IPAddress?,
                            _ port: UInt16, _ req: RequestFacts?) -> Int32? {
        let base = UInt32(action.rawValue * 3) * 2
        if present >> base & 0b11_1111 == 0 { return nil }
        @inline(__always)
        func probe(_ p: UInt64, _ any: UInt32, _ kind: UInt64, _ id: Int32) -> Int32? {
            guard id >= 0, present & (1 << (base + UInt32(kind) * 2 + any)) != 0,
                  let span = table.lookup(IstioLayerEngine.tableKey(slot: slot, action: action, kind: kind, port: p, id: id))
            else { return nil }
            for k in span.range {
                let g = table.pool[k]
                if program.matches(group: Int(g), src, destination: dst, port: port, request: req) { return g }
            }
            return nil
        }
        let exact = UInt64(port)
        if let g = probe(exact, 0, 1, src.principalID) ?? probe(exact, 0, 2, src.namespaceID) ?? probe(exact, 0, 0, 0)
            ?? probe(0x1_0000, 1, 1, src.principalID) ?? probe(0x1_0000, 1, 2, src.namespaceID) ?? probe(0x1_0000, 1, 0, 0) {
            return g
        }
        return nil
    }

    /// Decision for a slot of the global table (same order as `decide(_ idx:)`).
    private func decide(slot: Int32, source: SourceFacts, destination: IPAddress?, port: UInt16,
                        request: RequestFacts?, providers: [String: any CustomAuthorizationProvider]) -> (LayerDecision, RuleReference?) {
        let info = slotInfo[Int(slot)]
        var audit: RuleReference?
        if let id = firstMatch(slot: slot, .audit, info.present, source, destination, port, request) { audit = rule(id) }
        if info.customGroups.count > 0, let request {
            for k in info.customGroups.range {
                let id = customPool[k]
                guard program.matches(group: Int(id), source, destination: destination, port: port, request: request),
                      case .custom(let name) = actions[Int(program.groups[Int(id)].policyIndex)] else { continue }
                let r = rule(id)
                let verdict = providers[name]?.check(CustomCheck(rule: r, provider: name, request: request.request)) ?? .deny
                if verdict == .deny {
                    return (LayerDecision(layer: .authorization, verdict: .deny, reason: .customDenied(provider: name, r)), audit)
                }
            }
        }
        if let id = firstMatch(slot: slot, .deny, info.present, source, destination, port, request) {
            return (LayerDecision(layer: .authorization, verdict: .deny, reason: .rule(rule(id))), audit)
        }
        if info.allowPolicies.count == 0 {
            return (LayerDecision(layer: .authorization, verdict: .allow, reason: .noAllowPolicy), audit)
        }
        if let id = firstMatch(slot: slot, .allow, info.present, source, destination, port, request) {
            return (LayerDecision(layer: .authorization, verdict: .allow, reason: .rule(rule(id))), audit)
        }
        let refs = info.allowPolicies.range.map { references[Int(allowPool[$0])] }
        return (LayerDecision(layer: .authorization, verdict: .deny, reason: .noMatchingAllow(refs)), audit)
    }

    private func groupKey(_ gi: Int32) -> GroupKey {
        let r = keyRecords[Int(gi)]
        let ports: [UInt16]? = r.ports.count < 0 ? nil : Array(keyPorts[r.ports.range])
        let ids = Array(keyIDs[r.ids.range])
        return GroupKey(ports: ports, principals: r.kind == 1 ? ids : nil, namespaces: r.kind == 2 ? ids : nil)
    }

    /// The number of policies compiled into this layer.
    var policyCount: Int { references.count }

    /// Whether a policy with this scope in `namespace` applies to workload `w`.
    static func applies(_ scope: IstioAuthorization.Scope, namespace: String, to w: Workload, inventory: Inventory) -> Bool {
        switch scope {
        case .global: return true
        case .namespace: return namespace == w.namespace
        case .workloadSelector(let labels):
            return namespace == w.namespace && labels.allSatisfy { w.labels[$0.key] == $0.value }
        case .workloads(let keys): return keys.contains(w.key)
        case .targetRefs(let refs):
            guard namespace == w.namespace else { return false }
            return refs.contains { ref in
                switch (ref.group, ref.kind) {
                case ("", "Service"), ("core", "Service"):
                    guard let svc = inventory.services.first(where: { $0.namespace == namespace && $0.name == ref.name }),
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
        var custom = GroupBuckets(), deny = GroupBuckets(), allow = GroupBuckets(), audit = GroupBuckets()
        var allowPolicies: [Int32] = []
        let candidates = ((policiesByNamespace[w.namespace] ?? []) + clusterScoped).sorted()
        for pi in candidates where IstioLayerEngine.applies(scopes[pi], namespace: namespaces[pi], to: w, inventory: inventory) {
            if actions[pi] == .allow { allowPolicies.append(Int32(pi)) }
            for gi in groupsByPolicy[pi] {
                let key = groupKey(gi)
                switch actions[pi] {
                case .allow: allow.add(gi, key)
                case .deny: deny.add(gi, key)
                case .audit: audit.add(gi, key)
                case .custom: custom.add(gi, key)
                }
            }
        }
        return WorkloadAuthorizationIndex(custom: custom, deny: deny, allow: allow, audit: audit, allowPolicies: allowPolicies)
    }

    func rule(_ group: Int32) -> RuleReference {
        let g = program.groups[Int(group)]
        return RuleReference(policy: references[Int(g.policyIndex)], section: "rules", index: Int(g.ruleIndex))
    }

    /// A matching group: the first found in the most selective buckets, so
    /// the same connection always reports the same rule.
    @inline(__always)
    private func firstMatch(_ buckets: GroupBuckets, _ src: SourceFacts, _ dst: IPAddress?, _ port: UInt16, _ req: RequestFacts?) -> Int32? {
        buckets.first(port: port, principal: src.principalID, namespace: src.namespaceID) { id in
            program.matches(group: Int(id), src, destination: dst, port: port, request: req)
        }
    }

    /// Decides for a workload of the inventory, or builds its index on the fly.
    func decide(_ w: Workload, inventory: Inventory, source: SourceFacts, destination: IPAddress?, port: UInt16,
                request: RequestFacts?, providers: [String: any CustomAuthorizationProvider]) -> (LayerDecision, RuleReference?) {
        if let slot = slot(of: w) {
            return decide(slot: slot, source: source, destination: destination, port: port, request: request, providers: providers)
        }
        return decide(index(for: w, inventory: inventory), source: source, destination: destination, port: port,
                      request: request, providers: providers)
    }

    /// Istio's order: CUSTOM, then DENY, then ALLOW; AUDIT is only recorded.
    func decide(_ idx: WorkloadAuthorizationIndex, source: SourceFacts, destination: IPAddress?, port: UInt16,
                request: RequestFacts?, providers: [String: any CustomAuthorizationProvider]) -> (LayerDecision, RuleReference?) {
        var audit: RuleReference?
        if !idx.audit.isEmpty, let id = firstMatch(idx.audit, source, destination, port, request) {
            audit = rule(id)
        }
        if !idx.custom.isEmpty, let request {
            for id in idx.custom.all where program.matches(group: Int(id), source, destination: destination, port: port, request: request) {
                let r = rule(id)
                guard case .custom(let name) = actions[Int(program.groups[Int(id)].policyIndex)] else { continue }
                let verdict = providers[name]?.check(CustomCheck(rule: r, provider: name, request: request.request)) ?? .deny
                if verdict == .deny {
                    return (LayerDecision(layer: .authorization, verdict: .deny, reason: .customDenied(provider: name, r)), audit)
                }
            }
        }
        if let id = firstMatch(idx.deny, source, destination, port, request) {
            return (LayerDecision(layer: .authorization, verdict: .deny, reason: .rule(rule(id))), audit)
        }
        if idx.allowPolicies.isEmpty {
            return (LayerDecision(layer: .authorization, verdict: .allow, reason: .noAllowPolicy), audit)
        }
        if let id = firstMatch(idx.allow, source, destination, port, request) {
            return (LayerDecision(layer: .authorization, verdict: .allow, reason: .rule(rule(id))), audit)
        }
        let refs = idx.allowPolicies.map { references[Int($0)] }
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
