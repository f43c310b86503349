import NIOCore

/// Where a mesh service is reached (a control plane's xDS or CA, one replica of
/// several): an IPv4 or IPv6 literal or a DNS name, and a port.
public struct ServerAddress: Sendable, Hashable, CustomStringConvertible {
    /// How ``host`` is to be resolved.
    public enum Kind: Sendable, Hashable {
        case ipv4, ipv6, dns
    }

    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// What `inet_pton` makes of ``host`` (NIO's `SocketAddress(ipAddress:port:)`): an IPv4 or IPv6
    /// literal, or else a name to resolve.
    public var kind: Kind {
        switch try? SocketAddress(ipAddress: host, port: port) {
        case .v4?: return .ipv4
        case .v6?: return .ipv6
        default: return .dns
        }
    }

    public var description: String { kind == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
