extension EndpointPolicyMap {
    /// Looks up traffic the way Cilium's datapath does: the entry for the exact
    /// remote identity and the wildcard entry are each found by longest
    /// protocol/port prefix; a deny in either drops; otherwise the exact
    /// identity's entry decides, then the wildcard's; with no entry, traffic is
    /// dropped only if the direction is enforced.
    public func lookup(direction: TrafficDirection, remoteIdentity: SecurityIdentity, ipProtocol: UInt8, port: UInt16) -> DatapathVerdict {
        var exact: PolicyEntry?
        var wildcard: PolicyEntry?
        for e in entries where e.key.direction == direction && e.key.admits(ipProtocol: ipProtocol, port: port) {
            if e.key.identity == remoteIdentity && remoteIdentity != .any {
                if exact.map({ e.key.l4PrefixLength > $0.key.l4PrefixLength }) ?? true { exact = e }
            } else if e.key.identity == .any {
                if wildcard.map({ e.key.l4PrefixLength > $0.key.l4PrefixLength }) ?? true { wildcard = e }
            }
        }
        if let d = [exact, wildcard].compactMap({ $0 }).first(where: { $0.value.isDeny }) {
            return DatapathVerdict(verdict: .deny, proxyPort: 0, authType: .disabled, entry: d)
        }
        if let e = exact ?? wildcard {
            return DatapathVerdict(verdict: .allow, proxyPort: e.value.proxyPort, authType: e.value.authType, entry: e)
        }
        let enforced = direction == .ingress ? ingressEnforced : egressEnforced
        return DatapathVerdict(verdict: enforced ? .deny : .allow, proxyPort: 0, authType: .disabled, entry: nil)
    }
}

extension DatapathState {
    /// The identity of an address by longest-prefix match in the ipcache.
    public func identity(of address: IPAddress) -> SecurityIdentity {
        var best: IPCacheEntry?
        for e in ipcache where e.prefix.contains(address) {
            if best.map({ e.prefix.prefixLength > $0.prefix.prefixLength }) ?? true { best = e }
        }
        return best?.identity ?? .world
    }
}
