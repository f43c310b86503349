/// Evaluates Kubernetes NetworkPolicy and CiliumNetworkPolicy together, the
/// way Cilium enforces them: per endpoint and direction, deny rules first
/// (across both kinds), then the union of allow rules, with default deny once
/// any enforcing policy selects the endpoint in that direction.
struct NetworkEngine: Sendable {
    var policies: [CompiledNetworkPolicy]
    let inventory: Inventory
    /// Indexes of policies selecting each known workload, with the labels they were computed for.
    private var selecting: [WorkloadKey: (labels: Labels, serviceAccount: String, policies: [Int])] = [:]
    /// Cilium labels of each known workload (computed once, not per decision).
    private var ciliumLabels: [WorkloadKey: (pod: Labels, serviceAccount: String, cilium: Labels)] = [:]

    init(policies: [CompiledNetworkPolicy], inventory: Inventory) {
        self.policies = policies.sorted { $0.reference < $1.reference }
        self.inventory = inventory
        if !policies.isEmpty {
            for w in inventory.workloads {
                ciliumLabels[WorkloadKey(namespace: w.namespace, name: w.name)] =
                    (w.labels, w.serviceAccount, CiliumLabels.of(w, namespaceLabels: inventory.namespaceLabels(w.namespace)))
            }
        }
        for w in inventory.workloads {
            selecting[WorkloadKey(namespace: w.namespace, name: w.name)] = (w.labels, w.serviceAccount, selectingPolicies(w))
        }
    }

    var isEmpty: Bool { policies.isEmpty }

    /// The Cilium labels of a workload (cached for workloads of the inventory
    /// whose labels are unchanged).
    func labels(_ w: Workload) -> Labels {
        if let cached = ciliumLabels[WorkloadKey(namespace: w.namespace, name: w.name)],
           cached.serviceAccount == w.serviceAccount, cached.pod == w.labels {
            return cached.cilium
        }
        return CiliumLabels.of(w, namespaceLabels: inventory.namespaceLabels(w.namespace))
    }

    func selects(_ p: CompiledNetworkPolicy, _ w: Workload) -> Bool {
        switch p.subject {
        case .pods(let ns, let sel):
            return w.namespace == ns && sel.matches(w.labels)
        case .endpoints(let ns, let sel):
            if let ns, w.namespace != ns { return false }
            return sel.matches(labels(w))
        }
    }

    /// The policies selecting `w`; the cached answer is used only while `w`'s labels and
    /// service account are those it was computed for (a relabelled pod is matched anew).
    func selectingPolicies(_ w: Workload) -> [Int] {
        if let cached = selecting[WorkloadKey(namespace: w.namespace, name: w.name)],
           cached.labels == w.labels, cached.serviceAccount == w.serviceAccount {
            return cached.policies
        }
        return policies.indices.filter { selects(policies[$0], w) }
    }

    /// Whether `endpoint` is isolated (default deny) in `direction`, and by which policies.
    func enforcingPolicies(_ endpoint: Workload, _ direction: TrafficDirection) -> [PolicyReference] {
        selectingPolicies(endpoint).filter { policies[$0].enforces.contains(direction) }.map { policies[$0].reference }
    }

    /// Whether `selector` selects `peer`.
    func peerMatches(_ selector: PeerSelector, _ peer: Peer) -> Bool {
        switch selector {
        case .any:
            return true
        case .pods(let ps, let nss, let ns):
            guard let w = peer.workload else { return false }
            if let nss {
                return nss.matches(inventory.namespaceLabels(w.namespace)) && ps.matches(w.labels)
            }
            return w.namespace == ns && ps.matches(w.labels)
        case .endpoints(let sel, let ns):
            guard let w = peer.workload else { return false }
            if let ns, w.namespace != ns { return false }
            return sel.matches(labels(w))
        case .entity(let e):
            return NetworkEngine.entity(e, matches: peer)
        case .cidr(let c, let except, let includesCluster):
            if !includesCluster {
                guard case .external = peer else { return false }
            }
            guard let ip = peer.address, c.contains(ip) else { return false }
            return !except.contains { $0.contains(ip) }
        }
    }

    static func entity(_ e: CiliumNetworkPolicy.Entity, matches peer: Peer) -> Bool {
        switch (e, peer) {
        case (.all, _): return true
        case (.world, .external): return true
        case (.world, _): return false
        case (.cluster, .external): return false
        case (.cluster, _): return true
        case (.host, .reserved(.host, _)): return true
        case (.remoteNode, .reserved(.remoteNode, _)): return true
        case (.health, .reserved(.health, _)): return true
        case (.`init`, .reserved(.`init`, _)): return true
        case (.unmanaged, .reserved(.unmanaged, _)): return true
        case (.kubeAPIServer, .reserved(.kubeAPIServer, _)): return true
        case (.ingress, .reserved(.ingress, _)): return true
        default: return false
        }
    }

    /// Whether a rule's ports admit `port`/`proto`. Named ports resolve on
    /// `portOwner` (the destination workload).
    static func portMatches(_ ports: [PortMatch]?, port: UInt16, proto: TransportProtocol, portOwner: Workload?) -> Bool {
        guard let ports else { return true }
        for p in ports {
            if let pp = p.proto, pp != proto { continue }
            switch p.ports {
            case .all: return true
            case .range(let lo, let hi): if port >= lo && port <= hi { return true }
            case .named(let name):
                if let owner = portOwner, owner.resolve(namedPort: name, protocol: proto) == port { return true }
            }
        }
        return false
    }

    /// The matching rules for one direction at `endpoint` with `peer` on the other side.
    func matchingRules(endpoint: Workload, direction: TrafficDirection, peer: Peer, port: UInt16,
                       proto: TransportProtocol) -> (deny: NetworkRule?, allows: [NetworkRule], hasRules: Bool) {
        let portOwner: Workload? = direction == .ingress ? endpoint : peer.workload
        var deny: NetworkRule?
        var allows: [NetworkRule] = []
        var hasRules = false
        for pi in selectingPolicies(endpoint) {
            for r in policies[pi].rules where r.direction == direction {
                hasRules = true
                guard NetworkEngine.portMatches(r.ports, port: port, proto: proto, portOwner: portOwner),
                      r.peers.contains(where: { peerMatches($0, peer) }) else { continue }
                if r.isDeny { if deny == nil { deny = r } } else { allows.append(r) }
            }
        }
        return (deny, allows, hasRules)
    }

    /// The L4 verdict of one direction.
    func decide(endpoint: Workload, direction: TrafficDirection, peer: Peer, port: UInt16, proto: TransportProtocol) -> LayerDecision {
        let layer: LayerDecision.Layer = direction == .ingress ? .ingress : .egress
        let m = matchingRules(endpoint: endpoint, direction: direction, peer: peer, port: port, proto: proto)
        if let d = m.deny { return LayerDecision(layer: layer, verdict: .deny, reason: .rule(d.reference)) }
        let enforcing = enforcingPolicies(endpoint, direction)
        guard let first = m.allows.first else {
            if enforcing.isEmpty { return LayerDecision(layer: layer, verdict: .allow, reason: .notSelected) }
            return LayerDecision(layer: layer, verdict: .deny, reason: .defaultDeny(enforcing))
        }
        let redirect = m.allows.contains { $0.http != nil }
        let auth = m.allows.map(\.authentication).max() ?? .disabled
        let decidingRule = m.allows.first { $0.http != nil } ?? first
        return LayerDecision(layer: layer, verdict: .allow, reason: .rule(decidingRule.reference),
                             redirectToProxy: redirect, authentication: auth)
    }

    /// The L7 verdict of one direction for a request that L4 redirected to the proxy.
    func decideHTTP(endpoint: Workload, direction: TrafficDirection, peer: Peer, request: HTTPRequest,
                    l4: LayerDecision) -> LayerDecision {
        guard l4.verdict == .allow, l4.redirectToProxy else { return l4 }
        let c = request.connection
        let m = matchingRules(endpoint: endpoint, direction: direction, peer: peer, port: c.destinationPort, proto: c.protocol)
        if let wildcard = m.allows.first(where: { $0.http == nil }) {
            return LayerDecision(layer: l4.layer, verdict: .allow, reason: .rule(wildcard.reference),
                                 redirectToProxy: true, authentication: l4.authentication)
        }
        for r in m.allows where r.http?.contains(where: { $0.matches(request) }) == true {
            return LayerDecision(layer: l4.layer, verdict: .allow, reason: .rule(r.reference),
                                 redirectToProxy: true, authentication: l4.authentication)
        }
        return LayerDecision(layer: l4.layer, verdict: .deny, reason: .noMatchingHTTPRule(m.allows.map(\.reference)),
                             redirectToProxy: true, authentication: l4.authentication)
    }
}
