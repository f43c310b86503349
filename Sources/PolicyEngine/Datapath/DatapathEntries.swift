/// One ipcache entry: every address inside `prefix` (longest prefix wins)
/// belongs to the security identity `identity`.
///
/// Maps to the BPF LPM-trie ipcache: key = (prefix length, family, address),
/// value = identity.
public struct IPCacheEntry: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var prefix: CIDR
    public var identity: SecurityIdentity

    public init(prefix: CIDR, identity: SecurityIdentity) {
        self.prefix = prefix
        self.identity = identity
    }

    public static func < (a: IPCacheEntry, b: IPCacheEntry) -> Bool { a.prefix < b.prefix }

    public var description: String { "\(prefix) -> \(identity)" }
}

/// The key of one per-endpoint policy entry, in the layout of Cilium's policy
/// map: peer identity (0 = any), direction, protocol (0 = any, with port
/// prefix length 0) and destination port with its prefix length (16 = one
/// port, 0 = all ports; ranges become several aligned prefixes).
public struct PolicyKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Remote security identity; `SecurityIdentity.any` (0) is the wildcard.
    public var identity: SecurityIdentity
    /// 0 ingress, 1 egress (see `TrafficDirection.datapathValue`).
    public var direction: TrafficDirection
    /// IP protocol number (6 TCP, 17 UDP, 132 SCTP), 0 = any protocol.
    public var ipProtocol: UInt8
    /// Destination port in host byte order, masked to `portPrefixLength` bits.
    public var port: UInt16
    /// Number of leading port bits that must match (0-16).
    public var portPrefixLength: UInt8

    public init(identity: SecurityIdentity, direction: TrafficDirection, ipProtocol: UInt8, port: UInt16, portPrefixLength: UInt8) {
        self.identity = identity
        self.direction = direction
        self.ipProtocol = ipProtocol
        self.portPrefixLength = portPrefixLength
        self.port = PolicyKey.mask(port, portPrefixLength)
    }

    static func mask(_ port: UInt16, _ len: UInt8) -> UInt16 {
        len == 0 ? 0 : port & (UInt16.max << UInt16(16 - len))
    }

    /// How specific the key's L4 part is: protocol (8 bits) plus port prefix.
    public var l4PrefixLength: Int { (ipProtocol == 0 ? 0 : 8) + Int(portPrefixLength) }

    /// Whether the key's L4 part admits `proto`/`port`.
    public func admits(ipProtocol proto: UInt8, port p: UInt16) -> Bool {
        (ipProtocol == 0 || ipProtocol == proto) && PolicyKey.mask(p, portPrefixLength) == port
    }

    /// Whether this key's L4 range contains `other`'s (same or wildcard identity not considered).
    func l4Covers(_ other: PolicyKey) -> Bool {
        if ipProtocol == 0 { return true }
        guard other.ipProtocol == ipProtocol, other.portPrefixLength >= portPrefixLength else { return false }
        return PolicyKey.mask(other.port, portPrefixLength) == port
    }

    public static func < (a: PolicyKey, b: PolicyKey) -> Bool {
        (a.direction.datapathValue, a.identity.rawValue, a.ipProtocol, a.port, a.portPrefixLength)
            < (b.direction.datapathValue, b.identity.rawValue, b.ipProtocol, b.port, b.portPrefixLength)
    }

    public var description: String {
        let proto = ipProtocol == 0 ? "any" : String(ipProtocol)
        return "\(direction.rawValue) id=\(identity) proto=\(proto) port=\(port)/\(portPrefixLength)"
    }
}

/// The value of one per-endpoint policy entry.
public struct PolicyEntryValue: Hashable, Sendable, CustomStringConvertible {
    /// Deny entries drop traffic regardless of any allow entry.
    public var isDeny: Bool
    /// Non-zero: redirect to the L7 proxy listening on this port.
    public var proxyPort: UInt16
    /// Authentication required before traffic flows.
    public var authType: AuthType
    /// The rule that decides traffic hitting this entry (an index into
    /// `DatapathState.rules`, from 1; 0 = none), for datapath events.
    public var ruleID: UInt32

    public init(isDeny: Bool, proxyPort: UInt16 = 0, authType: AuthType = .disabled, ruleID: UInt32 = 0) {
        self.isDeny = isDeny
        self.proxyPort = isDeny ? 0 : proxyPort
        self.authType = isDeny ? .disabled : authType
        self.ruleID = ruleID
    }

    /// Combines two values that apply to the same traffic: deny wins (its
    /// rule decides); otherwise the highest proxy port and the strongest
    /// authentication, and the first rule in policy order.
    func merged(with o: PolicyEntryValue) -> PolicyEntryValue {
        switch (isDeny, o.isDeny) {
        case (true, true): return PolicyEntryValue(isDeny: true, ruleID: min(ruleID, o.ruleID))
        case (true, false): return self
        case (false, true): return o
        case (false, false):
            return PolicyEntryValue(isDeny: false, proxyPort: max(proxyPort, o.proxyPort), authType: max(authType, o.authType),
                                    ruleID: min(ruleID, o.ruleID))
        }
    }

    public var description: String {
        if isDeny { return "deny" }
        var s = "allow"
        if proxyPort != 0 { s += " proxy=\(proxyPort)" }
        if authType != .disabled { s += " auth=\(authType.rawValue)" }
        return s
    }
}

/// One per-endpoint policy map entry.
public struct PolicyEntry: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var key: PolicyKey
    public var value: PolicyEntryValue

    public init(key: PolicyKey, value: PolicyEntryValue) {
        self.key = key
        self.value = value
    }

    public static func < (a: PolicyEntry, b: PolicyEntry) -> Bool { a.key < b.key }

    public var description: String { "\(key) => \(value)" }
}

/// The policy map of one endpoint plus its enforcement flags (a miss is a
/// drop only in a direction where the endpoint is in default deny).
public struct EndpointPolicyMap: Hashable, Sendable {
    /// `namespace/name` of the endpoint's pod.
    public var endpoint: String
    /// The endpoint's own security identity.
    public var identity: SecurityIdentity
    public var ingressEnforced: Bool
    public var egressEnforced: Bool
    /// Entries sorted by key.
    public var entries: [PolicyEntry]
}

/// The result of a datapath lookup.
public struct DatapathVerdict: Hashable, Sendable, CustomStringConvertible {
    public var verdict: Verdict
    public var proxyPort: UInt16
    public var authType: AuthType
    /// The entry that decided; nil when the endpoint's default applied.
    public var entry: PolicyEntry?

    public var description: String {
        var s = verdict.rawValue
        if proxyPort != 0 { s += " proxy=\(proxyPort)" }
        if authType != .disabled { s += " auth=\(authType.rawValue)" }
        s += entry.map { " (\($0.key))" } ?? " (default)"
        return s
    }
}
