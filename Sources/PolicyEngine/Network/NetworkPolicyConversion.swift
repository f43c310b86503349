extension NetworkPolicy {
    /// The policy in the engine's shared network form.
    func compiled() -> CompiledNetworkPolicy {
        let ref = reference
        func convert(_ rules: [Rule], _ dir: TrafficDirection) -> [NetworkRule] {
            rules.enumerated().map { i, r in
                let peers: [PeerSelector] = r.peers.isEmpty ? [.any] : r.peers.map { p in
                    switch p {
                    case .pods(let ps, let nss): return .pods(ps, namespaceSelector: nss, namespace: namespace)
                    case .ipBlock(let c, let except): return .cidr(c, except: except, includesClusterPeers: true)
                    }
                }
                let ports: [PortMatch]? = r.ports.isEmpty ? nil : r.ports.map { p in
                    switch p.port {
                    case .none: return PortMatch(proto: p.protocol, ports: .all)
                    case .number(let n): return PortMatch(proto: p.protocol, ports: .range(n, p.endPort ?? n))
                    case .named(let name): return PortMatch(proto: p.protocol, ports: .named(name))
                    }
                }
                return NetworkRule(reference: RuleReference(policy: ref, section: dir.rawValue, index: i), direction: dir,
                                   isDeny: false, peers: peers, ports: ports, http: nil, authentication: .disabled)
            }
        }
        var enforces = Set<TrafficDirection>()
        var rules: [NetworkRule] = []
        if policyTypes.contains(.ingress) {
            enforces.insert(.ingress)
            rules += convert(ingress, .ingress)
        }
        if policyTypes.contains(.egress) {
            enforces.insert(.egress)
            rules += convert(egress, .egress)
        }
        return CompiledNetworkPolicy(reference: ref, subject: .pods(namespace: namespace, podSelector),
                                     enforces: enforces, rules: rules)
    }
}

extension CiliumNetworkPolicy {
    /// The policy in the engine's shared network form; fails only on an HTTP
    /// regex that does not compile (the loader validates those first).
    func compiled() throws -> CompiledNetworkPolicy {
        let ref = reference
        let ns: String? = namespace.isEmpty ? nil : namespace
        func convert(_ rules: [Rule]?, _ section: String, _ dir: TrafficDirection, deny: Bool) throws -> [NetworkRule] {
            guard let rules else { return [] }
            return try rules.enumerated().map { i, r in
                var peers: [PeerSelector] = []
                for sel in r.endpoints ?? [] {
                    let scoped = sel.mentions(CiliumLabels.namespaceKey) ? nil : ns
                    peers.append(.endpoints(sel, namespace: scoped))
                }
                for e in r.entities ?? [] { peers.append(.entity(e)) }
                for c in r.cidrs ?? [] { peers.append(.cidr(c.cidr, except: c.except, includesClusterPeers: false)) }
                var ports: [PortMatch]?
                var http: [HTTPMatcher]?
                if let toPorts = r.toPorts, !toPorts.isEmpty {
                    var pm: [PortMatch] = []
                    for pr in toPorts {
                        for p in pr.ports {
                            if let name = p.namedPort { pm.append(PortMatch(proto: p.protocol, ports: .named(name))) }
                            else if p.port == 0 { pm.append(PortMatch(proto: p.protocol, ports: .all)) }
                            else { pm.append(PortMatch(proto: p.protocol, ports: .range(p.port, p.endPort ?? p.port))) }
                        }
                        if let h = pr.http { http = (http ?? []) + (try h.map(HTTPMatcher.init)) }
                    }
                    ports = pm
                }
                // An L4-only rule (ports, no peers) applies to every peer; a rule
                // with neither peers nor ports selects nothing.
                if r.hasNoPeers && ports != nil { peers = [.any] }
                let auth: AuthType
                switch r.authentication {
                case .required: auth = .spire
                case .testAlwaysFail: auth = .alwaysFail
                case .disabled, .none: auth = .disabled
                }
                return NetworkRule(reference: RuleReference(policy: ref, section: section, index: i), direction: dir,
                                   isDeny: deny, peers: peers, ports: ports, http: deny ? nil : http,
                                   authentication: deny ? .disabled : auth)
            }
        }
        var rules: [NetworkRule] = []
        rules += try convert(ingressDeny, "ingressDeny", .ingress, deny: true)
        rules += try convert(egressDeny, "egressDeny", .egress, deny: true)
        rules += try convert(ingress, "ingress", .ingress, deny: false)
        rules += try convert(egress, "egress", .egress, deny: false)
        var enforces = Set<TrafficDirection>()
        let hasIngress = !(ingress ?? []).isEmpty || !(ingressDeny ?? []).isEmpty
        let hasEgress = !(egress ?? []).isEmpty || !(egressDeny ?? []).isEmpty
        if enableDefaultDeny.ingress ?? hasIngress { enforces.insert(.ingress) }
        if enableDefaultDeny.egress ?? hasEgress { enforces.insert(.egress) }
        return CompiledNetworkPolicy(reference: ref, subject: .endpoints(namespace: ns, endpointSelector),
                                     enforces: enforces, rules: rules)
    }
}

/// The labels Cilium derives for an endpoint, which its selectors match.
enum CiliumLabels {
    static let namespaceKey = "io.kubernetes.pod.namespace"
    static let namespaceLabelPrefix = "io.cilium.k8s.namespace.labels."
    static let serviceAccountKey = "io.cilium.k8s.policy.serviceaccount"

    /// Pod labels plus namespace, namespace labels and service account.
    static func of(_ w: Workload, namespaceLabels: Labels) -> Labels {
        var l = w.labels
        l[namespaceKey] = w.namespace
        for (k, v) in namespaceLabels { l[namespaceLabelPrefix + k] = v }
        l[serviceAccountKey] = w.serviceAccount
        return l
    }
}
