import MeshIdentity
import NIOCore

/// One inbound CONNECT, as the server saw it after the mTLS handshake.
public struct HBONEInboundRequest: Sendable, Hashable {
    /// The verified SPIFFE ID of the connecting peer (same trust domain as the server).
    public var peerID: SPIFFEID
    /// The requested destination.
    public var authority: HBONEAuthority
    /// `forwarded`, `baggage` and `traceparent` as received.
    public var forwarding: HBONEForwarding
    /// The TCP address of the peer that opened the HBONE connection.
    public var peerAddress: SocketAddress?
    /// The address the HBONE connection reached on this side: with in-pod listeners, the
    /// destination pod's own IP and 15008.
    public var localAddress: SocketAddress?

    public init(peerID: SPIFFEID, authority: HBONEAuthority, forwarding: HBONEForwarding = HBONEForwarding(),
                peerAddress: SocketAddress? = nil, localAddress: SocketAddress? = nil) {
        self.peerID = peerID
        self.authority = authority
        self.forwarding = forwarding
        self.peerAddress = peerAddress
        self.localAddress = localAddress
    }
}

/// Where an allowed inbound stream is connected to.
public struct HBONEUpstream: Sendable, Hashable {
    /// The upstream TCP address.
    public var address: SocketAddress
    /// A name for logs and metrics (for example the destination workload), if known.
    public var name: String?

    public init(address: SocketAddress, name: String? = nil) {
        self.address = address
        self.name = name
    }
}

/// The outcome of authorizing an inbound stream.
public enum HBONEAuthorization: Sendable, Hashable {
    /// The stream may proceed.
    case allow
    /// The stream is answered 401; the reason is logged.
    case deny(reason: String)
}

/// Decides what an ``HBONEServer`` does with each CONNECT.
///
/// For every well-formed CONNECT the server first calls ``resolve(_:)``
/// (nil → 503, unknown destination), then ``authorize(_:upstream:)``
/// (deny → 401), then connects to the upstream (failure → 503) and only then
/// answers 200.
public protocol HBONEInboundHandler: Sendable {
    /// The upstream for a request, or nil when the destination is unknown here.
    func resolve(_ request: HBONEInboundRequest) async -> HBONEUpstream?
    /// Whether the peer may reach the destination.
    func authorize(_ request: HBONEInboundRequest, upstream: HBONEUpstream) async -> HBONEAuthorization
}

/// An ``HBONEInboundHandler`` from two closures (handy in tests and small programs).
public struct HBONEClosureInboundHandler: HBONEInboundHandler {
    private let resolver: @Sendable (HBONEInboundRequest) async -> HBONEUpstream?
    private let authorizer: @Sendable (HBONEInboundRequest, HBONEUpstream) async -> HBONEAuthorization

    public init(
        resolve: @escaping @Sendable (HBONEInboundRequest) async -> HBONEUpstream?,
        authorize: @escaping @Sendable (HBONEInboundRequest, HBONEUpstream) async -> HBONEAuthorization = { _, _ in .allow }
    ) {
        self.resolver = resolve
        self.authorizer = authorize
    }

    /// Forwards every IP authority to itself and allows everything.
    public static let passthrough = HBONEClosureInboundHandler(resolve: { request in
        request.authority.socketAddress.map { HBONEUpstream(address: $0) }
    })

    public func resolve(_ request: HBONEInboundRequest) async -> HBONEUpstream? { await resolver(request) }

    public func authorize(_ request: HBONEInboundRequest, upstream: HBONEUpstream) async -> HBONEAuthorization {
        await authorizer(request, upstream)
    }
}
