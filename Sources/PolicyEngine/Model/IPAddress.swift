/// An IPv4 or IPv6 address held as a 128-bit value.
///
/// IPv4 addresses occupy the low 32 bits; `family` tells the two apart, so
/// `10.0.0.1` and `::a00:1` are different addresses.
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The address family.
    public enum Family: UInt8, Hashable, Sendable {
        case v4 = 4
        case v6 = 6

        /// Number of bits in an address of this family.
        public var bitWidth: Int { self == .v4 ? 32 : 128 }
    }

    /// High 64 bits (always zero for IPv4).
    public let high: UInt64
    /// Low 64 bits (the IPv4 address for `.v4`).
    public let low: UInt64
    /// The address family.
    public let family: Family

    /// An IPv4 address from its 32-bit big-endian value.
    public init(v4 value: UInt32) {
        self.high = 0
        self.low = UInt64(value)
        self.family = .v4
    }

    /// An IPv6 address from its two 64-bit halves.
    public init(v6High high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
        self.family = .v6
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text; nil if malformed.
    public init?(_ text: String) {
        if text.contains(":") {
            guard let (h, l) = IPAddress.parseV6(text) else { return nil }
            self.init(v6High: h, low: l)
        } else {
            guard let v = IPAddress.parseV4(text) else { return nil }
            self.init(v4: v)
        }
    }

    /// An address from its network-order bytes (4 for IPv4, 16 for IPv6), as
    /// carried by protobuf `bytes` fields; nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4:
            self.init(v4: bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        case 16:
            let all = Array(bytes)
            let high = all[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let low = all[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self.init(v6High: high, low: low)
        default:
            return nil
        }
    }

    /// The IPv4 value (meaningful only when `family == .v4`).
    public var v4Value: UInt32 { UInt32(truncatingIfNeeded: low) }

    /// The network-order bytes (4 for IPv4, 16 for IPv6), the inverse of ``init(bytes:)``.
    public var bytes: [UInt8] {
        switch family {
        case .v4: return (0..<4).map { UInt8(truncatingIfNeeded: v4Value >> UInt32(24 - 8 * $0)) }
        case .v6: return (0..<8).map { UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * $0)) }
        }
    }

    /// The bit at `index` counted from the most significant bit of the family's width.
    func bit(_ index: Int) -> Bool {
        if family == .v4 { return (low >> UInt64(31 - index)) & 1 == 1 }
        return index < 64 ? (high >> UInt64(63 - index)) & 1 == 1 : (low >> UInt64(127 - index)) & 1 == 1
    }

    /// This address with all bits after the first `prefixLength` cleared.
    public func masked(to prefixLength: Int) -> IPAddress {
        let n = max(0, min(prefixLength, family.bitWidth))
        switch family {
        case .v4:
            let mask: UInt32 = n == 0 ? 0 : ~UInt32(0) << UInt32(32 - n)
            return IPAddress(v4: v4Value & mask)
        case .v6:
            let hm: UInt64 = n >= 64 ? ~0 : (n == 0 ? 0 : ~UInt64(0) << UInt64(64 - n))
            let lm: UInt64 = n <= 64 ? 0 : (n == 128 ? ~0 : ~UInt64(0) << UInt64(128 - n))
            return IPAddress(v6High: high & hm, low: low & lm)
        }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.family != b.family { return a.family.rawValue < b.family.rawValue }
        return (a.high, a.low) < (b.high, b.low)
    }

    public var description: String {
        switch family {
        case .v4:
            let v = v4Value
            return "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
        case .v6:
            var groups: [UInt16] = []
            for i in 0..<4 { groups.append(UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * i))) }
            for i in 0..<4 { groups.append(UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * i))) }
            // Compress the longest run of zero groups (length >= 2).
            var bestStart = -1, bestLen = 0, i = 0
            while i < 8 {
                if groups[i] == 0 {
                    var j = i
                    while j < 8 && groups[j] == 0 { j += 1 }
                    if j - i > bestLen { bestStart = i; bestLen = j - i }
                    i = j
                } else { i += 1 }
            }
            let hex = groups.map { String($0, radix: 16) }
            if bestLen < 2 { return hex.joined(separator: ":") }
            let left = hex[0..<bestStart].joined(separator: ":")
            let right = hex[(bestStart + bestLen)...].joined(separator: ":")
            return left + "::" + right
        }
    }

    static func parseV4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let b = UInt32(p), b <= 255 else { return nil }
            if p.count > 1 && p.first == "0" { return nil }
            v = v << 8 | b
        }
        return v
    }

    static func parseV6(_ text: String) -> (UInt64, UInt64)? {
        var groups: [UInt16] = []
        var tail: [UInt16] = []
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func parseGroups(_ s: String, allowV4Tail: Bool) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            let items = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, item) in items.enumerated() {
                if allowV4Tail && i == items.count - 1 && item.contains(".") {
                    guard let v4 = parseV4(String(item)) else { return nil }
                    out.append(UInt16(v4 >> 16)); out.append(UInt16(v4 & 0xffff))
                    continue
                }
                guard (1...4).contains(item.count), let g = UInt16(item, radix: 16) else { return nil }
                out.append(g)
            }
            return out
        }
        if halves.count == 2 {
            guard let a = parseGroups(halves[0], allowV4Tail: false), let b = parseGroups(halves[1], allowV4Tail: true),
                  a.count + b.count <= 7 else { return nil }
            groups = a
            tail = b
            groups += Array(repeating: 0, count: 8 - a.count - b.count) + tail
        } else {
            guard let a = parseGroups(halves[0], allowV4Tail: true), a.count == 8 else { return nil }
            groups = a
        }
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<4 { h = h << 16 | UInt64(groups[i]) }
        for i in 4..<8 { l = l << 16 | UInt64(groups[i]) }
        return (h, l)
    }
}

/// An IP prefix such as `10.0.0.0/8` or `2001:db8::/32`.
///
/// The stored address is always masked to the prefix length.
public struct CIDR: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The network address (host bits cleared).
    public let address: IPAddress
    /// Number of leading bits that must match.
    public let prefixLength: Int

    /// A prefix from an address and length; host bits are cleared.
    public init(address: IPAddress, prefixLength: Int) {
        let n = max(0, min(prefixLength, address.family.bitWidth))
        self.address = address.masked(to: n)
        self.prefixLength = n
    }

    /// Parses `ADDR/LEN`, or a bare address as a host prefix when `allowBareAddress`.
    public init?(_ text: String, allowBareAddress: Bool = true) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let ip = IPAddress(String(parts[0])) else { return nil }
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber), let n = Int(parts[1]), n <= ip.family.bitWidth else { return nil }
            self.init(address: ip, prefixLength: n)
        } else {
            guard allowBareAddress else { return nil }
            self.init(address: ip, prefixLength: ip.family.bitWidth)
        }
    }

    /// The host prefix (/32 or /128) of an address.
    public init(host: IPAddress) {
        self.init(address: host, prefixLength: host.family.bitWidth)
    }

    /// Whether `ip` lies inside this prefix.
    @inline(__always)
    public func contains(_ ip: IPAddress) -> Bool {
        ip.family == address.family && ip.masked(to: prefixLength) == address
    }

    /// Whether every address of `other` lies inside this prefix.
    public func contains(_ other: CIDR) -> Bool {
        other.address.family == address.family && other.prefixLength >= prefixLength && contains(other.address)
    }

    public static func < (a: CIDR, b: CIDR) -> Bool {
        (a.address, a.prefixLength) < (b.address, b.prefixLength)
    }

    public var description: String { "\(address)/\(prefixLength)" }
}
