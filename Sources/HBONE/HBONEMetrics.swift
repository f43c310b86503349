import MeshIdentity
import NIOCore

/// Envoy-style response flags recorded for each tunnel.
public enum HBONEResponseFlag: String, Sendable, Hashable {
    /// No flag: the tunnel was established.
    case none = "-"
    /// Bad request (400).
    case badRequest = "BR"
    /// Denied by authorization policy (401).
    case denied = "DENY"
    /// Unknown destination (503).
    case noRoute = "NR"
    /// The upstream connect failed (503).
    case upstreamConnectionFailure = "UF"
}

/// What a tunnel connected.
public struct HBONETunnelInfo: Sendable, Hashable {
    /// Inbound (server side) or outbound (client side).
    public enum Direction: String, Sendable, Hashable {
        case inbound, outbound
    }

    /// Which side observed the tunnel.
    public var direction: Direction
    /// The verified SPIFFE ID of the source (inbound) or the destination's expected identities' match (outbound).
    public var peerID: SPIFFEID?
    /// The CONNECT authority.
    public var authority: String
    /// The original source from `forwarded`, if any.
    public var source: String?
    /// When the CONNECT was made (a tunnel's duration is measured from here).
    public var started: ContinuousClock.Instant

    public init(direction: Direction, peerID: SPIFFEID?, authority: String, source: String?, started: ContinuousClock.Instant = .now) {
        self.direction = direction
        self.peerID = peerID
        self.authority = authority
        self.source = source
        self.started = started
    }
}

/// How a tunnel ended.
public struct HBONETunnelSummary: Sendable, Hashable {
    /// The CONNECT response status.
    public var status: Int
    /// The response flag.
    public var responseFlag: HBONEResponseFlag
    /// Bytes that went from the tunnel's client towards its destination.
    public var bytesToDestination: UInt64
    /// Bytes that came back from the destination.
    public var bytesFromDestination: UInt64

    public init(status: Int, responseFlag: HBONEResponseFlag, bytesToDestination: UInt64 = 0, bytesFromDestination: UInt64 = 0) {
        self.status = status
        self.responseFlag = responseFlag
        self.bytesToDestination = bytesToDestination
        self.bytesFromDestination = bytesFromDestination
    }
}

/// Receives tunnel lifecycle events; later issues export them with Istio's metric names
/// (`istio_tcp_connections_opened_total`, `..._closed_total`, `istio_tcp_received_bytes_total`, `istio_tcp_sent_bytes_total`).
///
/// Methods are called from event loop threads and must not block.
public protocol HBONEMetricsObserver: Sendable {
    /// A tunnel was established (after the 200).
    func tunnelOpened(_ info: HBONETunnelInfo)
    /// A tunnel ended, or a CONNECT was refused (then `summary.status` is not 200).
    func tunnelClosed(_ info: HBONETunnelInfo, summary: HBONETunnelSummary)
    /// (server) A connection was closed before its mTLS handshake completed: no or an untrusted
    /// client certificate, not TLS at all, or no ALPN `h2`. Reported once per connection.
    func handshakeFailed(peer: SocketAddress?, local: SocketAddress?, reason: String)
}

extension HBONEMetricsObserver {
    /// Observers that do not count handshake failures need not implement this.
    public func handshakeFailed(peer: SocketAddress?, local: SocketAddress?, reason: String) {}
}

/// An observer that ignores everything.
public struct HBONENoMetrics: HBONEMetricsObserver {
    public init() {}
    public func tunnelOpened(_ info: HBONETunnelInfo) {}
    public func tunnelClosed(_ info: HBONETunnelInfo, summary: HBONETunnelSummary) {}
}
