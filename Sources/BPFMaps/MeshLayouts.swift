@_exported import CMeshBPF

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The structs of bpf/include/mesh_maps.h, imported through the CMeshBPF
// target, are map keys and values as they are: every byte is a named field.
extension mesh_ipcache_key: BPFFixedLayout {}
extension mesh_ipcache_value: BPFFixedLayout {}
extension mesh_policy_key: BPFFixedLayout {}
extension mesh_policy_value: BPFFixedLayout {}
extension mesh_auth_key: BPFFixedLayout {}
extension mesh_auth_value: BPFFixedLayout {}
extension mesh_endpoint_config: BPFFixedLayout {}
extension mesh_counter: BPFFixedLayout {}
extension mesh_auth_event: BPFFixedLayout {}
extension mesh_ct_key: BPFFixedLayout {}
extension mesh_ct_value: BPFFixedLayout {}
extension mesh_service_key: BPFFixedLayout {}
extension mesh_service_value: BPFFixedLayout {}

/// Reserved numeric security identities (as Cilium); cluster identities start at 256.
public enum ReservedIdentity {
    /// In policy keys: any identity.
    public static let wildcard: UInt32 = 0
    /// The local host.
    public static let host: UInt32 = 1
    /// Anything outside the cluster (also what an address missing from the ipcache resolves to).
    public static let world: UInt32 = 2
    /// Another node of the cluster.
    public static let remoteNode: UInt32 = 6
    /// The first identity allocated to workloads.
    public static let clusterMinimum: UInt32 = 256
}

/// Traffic direction as seen from the workload (`MESH_DIR_*`).
public enum BPFDirection: UInt8, Sendable, Hashable {
    case ingress = 0
    case egress = 1
}

/// Authentication a policy entry requires (`MESH_AUTH_*`).
public enum BPFAuthType: UInt8, Sendable, Hashable {
    /// No authentication.
    case none = 0
    /// Mutual TLS with SPIFFE identities (Cilium's `authentication.mode: required`).
    case spire = 1
    /// Never satisfiable (tests).
    case alwaysFail = 2
}

/// Index of a verdict counter in the `mesh_counters` per-CPU array (`MESH_VERDICT_*`).
public enum BPFVerdict: UInt32, Sendable, Hashable, CaseIterable {
    case allow = 0
    case dropNoRule = 1
    case dropDeny = 2
    case dropAuth = 3
    case reply = 4
    case notEnforced = 5
    case eventLost = 6
}

/// Index of a counter in the `mesh_sock_stats` per-CPU array (`MESH_SOCK_*`).
public enum SocketStat: UInt32, Sendable, Hashable, CaseIterable {
    case rewrite4 = 0
    case rewrite6 = 1
    case activeEstablished = 2
    case passiveEstablished = 3
}

/// Nanoseconds since boot, including suspend (`CLOCK_BOOTTIME`), the clock of
/// `bpf_ktime_get_boot_ns` and of auth-map expirations.
public enum BootClock {
    /// The current boot time in nanoseconds.
    public static func now() -> UInt64 {
        var ts = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_BOOTTIME, &ts)
        #else
        clock_gettime(CLOCK_MONOTONIC, &ts)
        #endif
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

func copyBytes<T>(_ bytes: [UInt8], into field: inout T) {
    withUnsafeMutableBytes(of: &field) { dst in
        let n = min(dst.count, bytes.count)
        for i in 0..<n { dst[i] = bytes[i] }
        for i in n..<dst.count { dst[i] = 0 }
    }
}

/// The address in a 16-byte C address field (`__u8[16]`, IPv4 in the first 4 bytes) of `family` (4 or 6).
func ipAddress<T>(_ field: T, family: UInt8) -> IPAddressBytes? {
    let all = withUnsafeBytes(of: field) { Array($0.prefix(16)) }
    return IPAddressBytes(bytes: family == 4 ? Array(all.prefix(4)) : all)
}

extension mesh_ipcache_key {
    /// The ipcache key for `address/prefixLength` (IPv4 0...32, IPv6 0...128);
    /// nil when the length is out of range.
    public init?(_ address: IPAddressBytes, prefixLength: Int) {
        guard (0...address.family.bitCount).contains(prefixLength) else { return nil }
        self.init(address, validPrefixLength: prefixLength)
    }

    /// The key the datapath looks up for a single address (full-length prefix).
    public init(host address: IPAddressBytes) {
        self.init(address, validPrefixLength: address.family.bitCount)
    }

    private init(_ address: IPAddressBytes, validPrefixLength prefixLength: Int) {
        self.init()
        prefixlen = UInt32(Int(MESH_IPCACHE_STATIC_PREFIX) + prefixLength)
        family = address.family.rawValue
        copyBytes(address.padded16, into: &addr)
    }

    /// The address part of the key.
    public var address: IPAddressBytes? { ipAddress(addr, family: family) }
}

extension mesh_policy_key {
    /// A policy key (PolicyEngine's `PolicyKey`).
    ///
    /// - Parameters:
    ///   - identity: remote security identity, or ``ReservedIdentity/wildcard``.
    ///   - direction: ingress or egress as seen from the workload.
    ///   - protocol: IP protocol number (6 TCP, 17 UDP, 132 SCTP), 0 = any protocol and port.
    ///   - port: destination port (ignored when `protocol` is 0).
    ///   - portPrefixLength: leading bits of `port` that must match: 16 = exactly `port`,
    ///     0 = any port; a range aligned to a power of two is one prefix
    ///     (e.g. 8080/13 covers 8080-8087). Bits beyond the prefix are cleared.
    public init(identity: UInt32, direction: BPFDirection,
                protocol proto: UInt8, port: UInt16 = 0, portPrefixLength: Int = 16) {
        self.init()
        self.identity = identity
        self.direction = direction.rawValue
        if proto == 0 {
            prefixlen = UInt32(MESH_POLICY_STATIC_PREFIX)
        } else {
            let bits = max(0, min(16, portPrefixLength))
            self.protocol = proto
            let mask: UInt16 = bits == 0 ? 0 : UInt16.max << (16 - bits)
            dport_be = (port & mask).bigEndian
            prefixlen = UInt32(Int(MESH_POLICY_STATIC_PREFIX) + 8 + bits)
        }
    }

    /// The destination port in host byte order.
    public var port: UInt16 { UInt16(bigEndian: dport_be) }

    /// Number of port bits in the prefix (0...16; 0 also for "any protocol").
    public var portPrefixLength: Int { max(0, Int(prefixlen) - Int(MESH_POLICY_STATIC_PREFIX) - 8) }
}

extension mesh_policy_value {
    /// A policy value (PolicyEngine's `PolicyEntryValue`): `deny` entries drop;
    /// for allow entries `proxyPort` 0 = no L7 redirect and an `authType` other
    /// than `.none` makes the datapath require an auth map entry; `ruleID` is opaque.
    public init(deny: Bool = false, proxyPort: UInt16 = 0, authType: BPFAuthType = .none, ruleID: UInt32 = 0) {
        self.init()
        self.deny = deny ? 1 : 0
        proxy_port_be = deny ? 0 : proxyPort.bigEndian
        auth_type = deny ? 0 : authType.rawValue
        rule_id = ruleID
    }

    /// Whether this is a deny entry.
    public var isDeny: Bool { deny != 0 }
    /// The proxy port in host byte order (0 = none).
    public var proxyPort: UInt16 { UInt16(bigEndian: proxy_port_be) }
}

extension mesh_auth_key {
    /// An auth map key; see docs/bpf.md ("IP reuse") for why `remoteIncarnation` is part of it.
    public init(localIdentity: UInt32, remoteIdentity: UInt32, remoteNodeID: UInt32,
                authType: BPFAuthType, remoteIncarnation: UInt64) {
        self.init()
        local_identity = localIdentity
        remote_identity = remoteIdentity
        remote_node_id = remoteNodeID
        auth_type = authType.rawValue
        remote_incarnation = remoteIncarnation
    }
}

extension mesh_auth_event {
    /// The source address of the dropped packet.
    public var source: IPAddressBytes? { ipAddress(saddr, family: family) }
    /// The destination address of the dropped packet.
    public var destination: IPAddressBytes? { ipAddress(daddr, family: family) }
    /// Source port (host order).
    public var sourcePort: UInt16 { UInt16(bigEndian: sport_be) }
    /// Destination port (host order).
    public var destinationPort: UInt16 { UInt16(bigEndian: dport_be) }
    /// The auth map key that would have let the packet through.
    public var authKey: mesh_auth_key {
        mesh_auth_key(localIdentity: local_identity, remoteIdentity: remote_identity,
                      remoteNodeID: remote_node_id, authType: BPFAuthType(rawValue: auth_type) ?? .spire,
                      remoteIncarnation: remote_incarnation)
    }
}

extension mesh_service_key {
    /// The service key for `vip:port` over `protocol` (6 TCP, 17 UDP).
    public init(vip: IPAddressBytes, port: UInt16, protocol proto: UInt8) {
        self.init()
        copyBytes(vip.padded16, into: &self.vip)
        port_be = port.bigEndian
        family = vip.family.rawValue
        self.protocol = proto
    }
}

extension mesh_service_value {
    /// The backend `address:port` a connect to the VIP is rewritten to.
    public init(backend address: IPAddressBytes, port: UInt16) {
        self.init()
        copyBytes(address.padded16, into: &backend)
        port_be = port.bigEndian
    }
}
