import Logging

/// Everything the datapath needs, as plain data: the ipcache, one policy map
/// per endpoint, the identities behind them, and diagnostics for policy the
/// identity model cannot express exactly.
public struct DatapathState: Sendable {
    /// ipcache entries, sorted by prefix.
    public var ipcache: [IPCacheEntry]
    /// Policy maps by endpoint (`namespace/name`).
    public var endpoints: [String: EndpointPolicyMap]
    /// The allocator holding every cluster identity used.
    public var identities: IdentityAllocator
    /// Prefix of each CIDR identity.
    public var cidrIdentities: [SecurityIdentity: CIDR]
    /// Identities that a Kubernetes `ipBlock` covers only partly (some member
    /// addresses inside, some outside); traffic from them may be decided
    /// differently by the datapath than by `PolicySet.decide`.
    public var impreciseIdentities: Set<SecurityIdentity>
    /// Human-readable notes about the above.
    public var diagnostics: [String]
    /// Every network rule, indexed by `PolicyEntryValue.ruleID - 1`.
    public var rules: [RuleReference]

    /// The rule behind a datapath rule id (nil for 0 or an unknown id).
    public func rule(id: UInt32) -> RuleReference? {
        id >= 1 && Int(id) <= rules.count ? rules[Int(id) - 1] : nil
    }
}

/// Compiles the Kubernetes and Cilium policies of a ``PolicySet`` into
/// Cilium-style datapath entries.
///
/// Entries are built per rule (identities selected by the rule's peers ×
/// protocol/port prefixes), then completed so that the datapath lookup
/// (exact identity first, then wildcard; longest port prefix; deny first)
/// gives the same answer as the set's own evaluation: for every pair of
/// overlapping exact-identity and wildcard keys the intersection key is added,
/// and every key's value folds in every key that covers it.
public struct DatapathCompiler: Sendable {
    /// Proxy port recorded in entries whose traffic an ingress L7 rule filters.
    public var ingressProxyPort: UInt16
    /// Proxy port recorded in entries whose traffic an egress L7 rule filters.
    public var egressProxyPort: UInt16
    /// Receives a warning for every diagnostic of a compilation.
    public var logger: Logger

    public init(ingressProxyPort: UInt16 = 10001, egressProxyPort: UInt16 = 10002,
                logger: Logger = Logger(label: "swift-mesh.policy.datapath")) {
        self.ingressProxyPort = ingressProxyPort
        self.egressProxyPort = egressProxyPort
        self.logger = logger
    }

    private struct Member {
        var workload: Workload
    }

    /// Compiles `set`; pass a previous allocator to keep identities stable.
    public func compile(_ set: PolicySet, allocator: IdentityAllocator = IdentityAllocator()) -> DatapathState {
        let inventory = set.inventory
        let network = set.network
        var allocator = allocator
        var members: [SecurityIdentity: [Workload]] = [:]
        var endpointIdentity: [String: SecurityIdentity] = [:]
        var ipcache: [CIDR: SecurityIdentity] = [:]
        for w in inventory.workloads.sorted(by: { $0.key < $1.key }) {
            let id = allocator.identity(for: CiliumLabels.of(w, namespaceLabels: inventory.namespaceLabels(w.namespace)))
            members[id, default: []].append(w)
            endpointIdentity[w.key] = id
            for a in w.addresses { ipcache[CIDR(host: a)] = id }
        }
        var reservedMembers: [SecurityIdentity: [IPAddress]] = [:]
        for (entity, addresses) in inventory.reservedAddresses {
            for a in addresses where ipcache[CIDR(host: a)] == nil {
                ipcache[CIDR(host: a)] = entity.identity
                reservedMembers[entity.identity, default: []].append(a)
            }
        }
        let worldV4 = CIDR(address: IPAddress(v4: 0), prefixLength: 0)
        let worldV6 = CIDR(address: IPAddress(v6High: 0, low: 0), prefixLength: 0)
        ipcache[worldV4] = .worldIPv4
        ipcache[worldV6] = .worldIPv6
        var cidrIdentities: [SecurityIdentity: CIDR] = [.worldIPv4: worldV4, .worldIPv6: worldV6]
        var prefixes = Set<CIDR>()
        for p in network.policies {
            for r in p.rules {
                for peer in r.peers {
                    if case .cidr(let c, let except, _) = peer {
                        prefixes.insert(c)
                        prefixes.formUnion(except)
                    }
                }
            }
        }
        var nextCIDR = SecurityIdentity.firstLocalCIDR
        for prefix in prefixes.sorted() where ipcache[prefix] == nil {
            let id = SecurityIdentity(rawValue: nextCIDR)
            nextCIDR += 1
            ipcache[prefix] = id
            cidrIdentities[id] = prefix
        }

        let clusterIdentities = members.keys.sorted()
        let reservedIdentities: [SecurityIdentity] = [.host, .unmanaged, .health, .initializing, .remoteNode, .kubeAPIServer, .ingress]
        var imprecise = Set<SecurityIdentity>()
        var diagnostics: [String] = []

        func identities(for peer: PeerSelector) -> [SecurityIdentity] {
            switch peer {
            case .any:
                return [.any]
            case .pods, .endpoints:
                return clusterIdentities.filter { id in
                    members[id].map { network.peerMatches(peer, .workload($0[0])) } ?? false
                }
            case .entity(let e):
                switch e {
                case .all: return [.any]
                case .world: return [.world] + cidrIdentities.keys.sorted()
                case .cluster: return reservedIdentities + clusterIdentities
                case .host: return [.host]
                case .remoteNode: return [.remoteNode]
                case .health: return [.health]
                case .`init`: return [.initializing]
                case .unmanaged: return [.unmanaged]
                case .kubeAPIServer: return [.kubeAPIServer]
                case .ingress: return [.ingress]
                }
            case .cidr(let c, let except, let includesCluster):
                var out: [SecurityIdentity] = []
                for (id, prefix) in cidrIdentities.sorted(by: { $0.key < $1.key })
                    where c.contains(prefix) && !except.contains(where: { $0.contains(prefix) }) {
                    out.append(id)
                }
                if includesCluster {
                    func inside(_ ip: IPAddress) -> Bool { c.contains(ip) && !except.contains { $0.contains(ip) } }
                    var candidates: [(SecurityIdentity, [IPAddress])] = clusterIdentities.map { id in
                        (id, members[id]?.compactMap { $0.addresses.first } ?? [])
                    }
                    candidates += reservedMembers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
                    for (id, ips) in candidates where !ips.isEmpty {
                        let n = ips.filter(inside).count
                        if n == ips.count { out.append(id) }
                        else if n > 0 {
                            if imprecise.insert(id).inserted {
                                diagnostics.append("identity \(id) is only partly inside ipBlock \(c); the datapath cannot select part of an identity, so it is not selected")
                            }
                        }
                    }
                }
                return out
            }
        }

        func portKeys(_ ports: [PortMatch]?, direction: TrafficDirection, identity: SecurityIdentity,
                      endpoint: Workload) -> [PolicyKey] {
            guard let ports else {
                return [PolicyKey(identity: identity, direction: direction, ipProtocol: 0, port: 0, portPrefixLength: 0)]
            }
            var keys: [PolicyKey] = []
            for p in ports {
                let protos = p.proto.map { [$0] } ?? TransportProtocol.allCases
                for proto in protos {
                    switch p.ports {
                    case .all:
                        keys.append(PolicyKey(identity: identity, direction: direction, ipProtocol: proto.ipProtocolNumber, port: 0, portPrefixLength: 0))
                    case .range(let lo, let hi):
                        for (port, len) in DatapathCompiler.prefixes(lo, hi) {
                            keys.append(PolicyKey(identity: identity, direction: direction, ipProtocol: proto.ipProtocolNumber, port: port, portPrefixLength: len))
                        }
                    case .named(let name):
                        // Ingress: the endpoint's own port. Egress: the peer's,
                        // which only a single-identity key can carry.
                        let owners: [Workload] = direction == .ingress ? [endpoint] : (members[identity] ?? [])
                        let resolved = Set(owners.map { $0.resolve(namedPort: name, protocol: proto) })
                        if resolved.count > 1 {
                            if imprecise.insert(identity).inserted {
                                diagnostics.append("named port '\(name)' resolves to different ports on the members of identity \(identity)")
                            }
                            continue
                        }
                        if let port = resolved.first ?? nil {
                            keys.append(PolicyKey(identity: identity, direction: direction, ipProtocol: proto.ipProtocolNumber, port: port, portPrefixLength: 16))
                        }
                    }
                }
            }
            return keys
        }

        var ruleIDs: [RuleReference: UInt32] = [:]
        var ruleList: [RuleReference] = []
        for p in network.policies {
            for r in p.rules where ruleIDs[r.reference] == nil {
                ruleList.append(r.reference)
                ruleIDs[r.reference] = UInt32(ruleList.count)
            }
        }

        var maps: [String: EndpointPolicyMap] = [:]
        for w in inventory.workloads {
            var original: [PolicyKey: PolicyEntryValue] = [:]
            for pi in network.selectingPolicies(w) {
                for r in network.policies[pi].rules {
                    var ids = Set<SecurityIdentity>()
                    for peer in r.peers { ids.formUnion(identities(for: peer)) }
                    if ids.contains(.any) { ids = [.any] }
                    // Egress named ports resolve per destination identity.
                    let namedEgress = r.direction == .egress && (r.ports?.contains { if case .named = $0.ports { return true } else { return false } } ?? false)
                    let proxy: UInt16 = r.http == nil ? 0 : (r.direction == .ingress ? ingressProxyPort : egressProxyPort)
                    let value = PolicyEntryValue(isDeny: r.isDeny, proxyPort: proxy, authType: r.authentication,
                                                 ruleID: ruleIDs[r.reference] ?? 0)
                    for id in ids.sorted() {
                        var keys: [PolicyKey]
                        if namedEgress, let ports = r.ports {
                            let named = ports.filter { if case .named = $0.ports { return true } else { return false } }
                            let numeric = ports.filter { if case .named = $0.ports { return false } else { return true } }
                            keys = numeric.isEmpty ? [] : portKeys(numeric, direction: r.direction, identity: id, endpoint: w)
                            let targets = id == .any ? clusterIdentities : [id]
                            for t in targets { keys += portKeys(named, direction: r.direction, identity: t, endpoint: w) }
                        } else {
                            keys = portKeys(r.ports, direction: r.direction, identity: id, endpoint: w)
                        }
                        for k in keys { original[k] = original[k].map { $0.merged(with: value) } ?? value }
                    }
                }
            }
            let entries = DatapathCompiler.complete(original)
            maps[w.key] = EndpointPolicyMap(
                endpoint: w.key, identity: endpointIdentity[w.key] ?? .any,
                ingressEnforced: !network.enforcingPolicies(w, .ingress).isEmpty,
                egressEnforced: !network.enforcingPolicies(w, .egress).isEmpty,
                entries: entries)
        }
        for d in diagnostics { logger.warning("\(d)") }
        logger.debug("compiled datapath entries", metadata: [
            "endpoints": "\(maps.count)", "ipcache": "\(ipcache.count)",
            "entries": "\(maps.values.reduce(0) { $0 + $1.entries.count })",
        ])
        return DatapathState(
            ipcache: ipcache.map { IPCacheEntry(prefix: $0.key, identity: $0.value) }.sorted(),
            endpoints: maps, identities: allocator, cidrIdentities: cidrIdentities,
            impreciseIdentities: imprecise, diagnostics: diagnostics, rules: ruleList)
    }

    /// Splits `lo...hi` into aligned port prefixes (port, prefix length).
    static func prefixes(_ lo: UInt16, _ hi: UInt16) -> [(UInt16, UInt8)] {
        var out: [(UInt16, UInt8)] = []
        var start = Int(lo)
        let end = Int(hi)
        while start <= end {
            var size = 1
            var len = 16
            while len > 0 {
                let bigger = size * 2
                if start % bigger != 0 || start + bigger - 1 > end { break }
                size = bigger
                len -= 1
            }
            out.append((UInt16(start), UInt8(len)))
            start += size
        }
        return out
    }

    /// Adds intersection keys and folds covering values into each key.
    static func complete(_ original: [PolicyKey: PolicyEntryValue]) -> [PolicyEntry] {
        var keys = Set(original.keys)
        let wildcard = original.keys.filter { $0.identity == .any }
        let exact = original.keys.filter { $0.identity != .any }
        for e in exact {
            for w in wildcard where w.direction == e.direction {
                if w.l4Covers(e) { continue }  // e is already the narrower key
                if e.l4Covers(w) {
                    keys.insert(PolicyKey(identity: e.identity, direction: e.direction, ipProtocol: w.ipProtocol,
                                          port: w.port, portPrefixLength: w.portPrefixLength))
                }
            }
        }
        var entries: [PolicyEntry] = []
        for k in keys {
            var value: PolicyEntryValue?
            for (ok, ov) in original where ok.direction == k.direction && (ok.identity == k.identity || ok.identity == .any) && ok.l4Covers(k) {
                value = value.map { $0.merged(with: ov) } ?? ov
            }
            if let value { entries.append(PolicyEntry(key: k, value: value)) }
        }
        return entries.sorted()
    }
}
