import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import MeshProto

/// An Aggregated Discovery Service server (SotW and delta) over gRPC/HTTP2,
/// serving each node the snapshot an ``XDSSnapshotCache`` holds for its ID.
///
/// ```swift
/// let cache = XDSSnapshotCache()
/// let server = XDSServer(cache: cache, configuration: .init(host: "127.0.0.1", port: 0))
/// async let serving: Void = server.run()
/// let port = try await server.listeningPort()
/// await cache.setSnapshot(try XDSSnapshot([...]), forNode: "node-1")
/// ```
public final class XDSServer: Sendable {
    /// Where and how the server listens.
    public struct Configuration: Sendable {
        /// The address to bind (IPv4 or IPv6 literal); `127.0.0.1` by default.
        public var host: String
        /// The port to bind; 0 picks a free one (read it with ``XDSServer/listeningPort()``).
        public var port: Int
        /// Plaintext by default; IdentityServices' `SPIFFEGRPCSecurity.server(...)` gives SPIFFE mTLS.
        public var transportSecurity: HTTP2ServerTransport.Posix.TransportSecurity

        /// Creates a configuration.
        public init(host: String = "127.0.0.1", port: Int = 15010, transportSecurity: HTTP2ServerTransport.Posix.TransportSecurity = .plaintext) {
            self.host = host
            self.port = port
            self.transportSecurity = transportSecurity
        }
    }

    /// The snapshots served.
    public let cache: XDSSnapshotCache
    /// Stream, push, ACK and NACK counters.
    public let counters: XDSServerCounters
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let registry: StreamRegistry
    private let connections: XDSConnectionTable

    /// Creates a server; it listens once ``run()`` is called. `additionalServices`
    /// are served on the same port (istiod serves its CA beside ADS on 15012).
    public init(cache: XDSSnapshotCache, configuration: Configuration = Configuration(), additionalServices: [any RegistrableRPCService] = [],
                observer: (any XDSServerObserver)? = nil, logger: Logger = Logger(label: "swift-mesh.xds-server")) {
        self.cache = cache
        let counters = XDSServerCounters()
        self.counters = counters
        let registry = StreamRegistry()
        self.registry = registry
        let connections = XDSConnectionTable()
        self.connections = connections
        let transport = HTTP2ServerTransport.Posix(
            address: configuration.host.contains(":")
                ? .ipv6(host: configuration.host, port: configuration.port)
                : .ipv4(host: configuration.host, port: configuration.port),
            transportSecurity: configuration.transportSecurity
        )
        self.server = GRPCServer(
            transport: transport,
            services: [ADSService(cache: cache, counters: counters, registry: registry, connections: connections, observer: observer, logger: logger)] + additionalServices
        )
    }

    /// Serves until ``shutdown()`` is called or the task is cancelled. Prefer
    /// ``shutdown()``: cancelling the serving task at the moment a connection is
    /// being accepted can trap inside NIO's async server channel (apple/swift-nio#2637).
    public func run() async throws {
        try await server.serve()
    }

    /// The streams connected now, with what each was sent and acknowledged per type.
    public func connectedClients() -> [XDSConnectionStatus] { connections.snapshot() }

    /// The bound port, once the server listens.
    public func listeningPort() async throws -> Int {
        let address = try await server.transport.listeningAddress
        if let ipv4 = address.ipv4 { return ipv4.port }
        if let ipv6 = address.ipv6 { return ipv6.port }
        throw XDSServerError.notListening
    }

    /// Stops accepting streams and ends the open ones with `unavailable` (clients
    /// reconnect elsewhere, keeping their last good state); then ``run()`` returns.
    public func shutdown() {
        server.beginGracefulShutdown()
        registry.closeAll()
    }
}
