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

    /// An IPv6 literal contains a colon; four dot-separated numbers are IPv4; anything else is a name.
    public var kind: Kind {
        if host.contains(":") { return .ipv6 }
        if host.split(separator: ".").count == 4, host.allSatisfy({ $0.isNumber || $0 == "." }) { return .ipv4 }
        return .dns
    }

    public var description: String { kind == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
