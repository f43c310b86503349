/// One side of a connection.
public enum Peer: Hashable, Sendable, CustomStringConvertible {
    /// A pod known to the inventory (its first address is used as its IP).
    case workload(Workload)
    /// An address outside the cluster (or unknown to the inventory).
    case external(IPAddress)
    /// A Cilium reserved entity (host, remote node, ...), with its address if known.
    case reserved(ReservedEntity, IPAddress?)

    /// The peer's IP address, if it has one.
    public var address: IPAddress? {
        switch self {
        case .workload(let w): return w.addresses.first
        case .external(let ip): return ip
        case .reserved(_, let ip): return ip
        }
    }

    /// The workload, if the peer is one.
    public var workload: Workload? {
        if case .workload(let w) = self { return w }
        return nil
    }

    public var description: String {
        switch self {
        case .workload(let w): return w.key
        case .external(let ip): return ip.description
        case .reserved(let e, let ip): return ip.map { "\(e.rawValue)(\($0))" } ?? e.rawValue
        }
    }
}

/// A new L4 connection, as ztunnel or the datapath sees it.
public struct Connection: Hashable, Sendable {
    public var source: Peer
    public var destination: Peer
    public var destinationPort: UInt16
    public var `protocol`: TransportProtocol
    /// The peer's authenticated identity (`<td>/ns/<ns>/sa/<sa>`) from mTLS;
    /// nil for plaintext.
    public var sourcePrincipal: String?
    /// The TLS SNI the client sent, if any.
    public var sni: String?

    public init(source: Peer, destination: Peer, destinationPort: UInt16, protocol: TransportProtocol = .tcp,
                sourcePrincipal: String? = nil, sni: String? = nil) {
        self.source = source
        self.destination = destination
        self.destinationPort = destinationPort
        self.protocol = `protocol`
        self.sourcePrincipal = sourcePrincipal
        self.sni = sni
    }

    /// A mesh connection between two workloads, the source authenticated by
    /// its SPIFFE identity in `trustDomain`.
    public static func mesh(from source: Workload, to destination: Workload, port: UInt16,
                            protocol proto: TransportProtocol = .tcp, trustDomain: String = "cluster.local") -> Connection {
        Connection(source: .workload(source), destination: .workload(destination), destinationPort: port,
                   protocol: proto, sourcePrincipal: source.principal(trustDomain: trustDomain))
    }
}

/// An HTTP request on top of a connection, as a waypoint or L7 proxy sees it.
public struct HTTPRequest: Hashable, Sendable {
    public var connection: Connection
    public var method: String
    /// The request target (path and optional query).
    public var path: String
    /// The `:authority` / `Host`.
    public var host: String
    /// Header names are matched case-insensitively; values keep their case.
    public var headers: [String: String]
    /// The JWT principal `<iss>/<sub>` established by RequestAuthentication, if any.
    public var requestPrincipal: String?
    /// JWT claims (a claim may have several values).
    public var claims: [String: [String]]
    /// The original client address (`remote.ip`); defaults to the source address.
    public var remoteAddress: IPAddress?

    public init(connection: Connection, method: String, path: String, host: String = "", headers: [String: String] = [:],
                requestPrincipal: String? = nil, claims: [String: [String]] = [:], remoteAddress: IPAddress? = nil) {
        self.connection = connection
        self.method = method
        self.path = path
        self.host = host
        var lowered: [String: String] = [:]
        for (k, v) in headers { lowered[k.lowercased()] = v }
        self.headers = lowered
        self.requestPrincipal = requestPrincipal
        self.claims = claims
        self.remoteAddress = remoteAddress
    }

    /// The path without query string or fragment, as Istio's `paths` match it.
    public var pathWithoutQuery: Substring {
        path.prefix { $0 != "?" && $0 != "#" }
    }
}
