/// A Cilium numeric security identity.
///
/// Reserved identities (1-10) name peers that are not pods; cluster
/// identities start at 256 and are allocated per distinct label set; local
/// CIDR identities (for prefixes named by policies) start at 2^24, as in Cilium.
public struct SecurityIdentity: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Wildcard in policy entries: any peer identity.
    public static let any = SecurityIdentity(rawValue: 0)
    /// The local host (`reserved:host`).
    public static let host = SecurityIdentity(rawValue: 1)
    /// Anything outside the cluster (`reserved:world`).
    public static let world = SecurityIdentity(rawValue: 2)
    /// Pods not managed by Cilium (`reserved:unmanaged`).
    public static let unmanaged = SecurityIdentity(rawValue: 3)
    /// Cilium health endpoints (`reserved:health`).
    public static let health = SecurityIdentity(rawValue: 4)
    /// Endpoints whose identity is not yet resolved (`reserved:init`).
    public static let initializing = SecurityIdentity(rawValue: 5)
    /// Other nodes of the cluster (`reserved:remote-node`).
    public static let remoteNode = SecurityIdentity(rawValue: 6)
    /// The Kubernetes API server (`reserved:kube-apiserver`).
    public static let kubeAPIServer = SecurityIdentity(rawValue: 7)
    /// Cilium's ingress proxy (`reserved:ingress`).
    public static let ingress = SecurityIdentity(rawValue: 8)
    /// IPv4 addresses outside the cluster, in dual-stack ipcache (`reserved:world-ipv4`).
    public static let worldIPv4 = SecurityIdentity(rawValue: 9)
    /// IPv6 addresses outside the cluster, in dual-stack ipcache (`reserved:world-ipv6`).
    public static let worldIPv6 = SecurityIdentity(rawValue: 10)

    /// First identity allocated to cluster label sets.
    public static let firstCluster: UInt32 = 256
    /// First identity allocated to CIDR prefixes (node-local scope).
    public static let firstLocalCIDR: UInt32 = 1 << 24

    public var isReserved: Bool { rawValue > 0 && rawValue < SecurityIdentity.firstCluster }
    public var isCIDR: Bool { rawValue >= SecurityIdentity.firstLocalCIDR }

    public static func < (a: SecurityIdentity, b: SecurityIdentity) -> Bool { a.rawValue < b.rawValue }

    public var description: String { String(rawValue) }
}
