import HBONE
import Logging
import MeshIdentity
import NIOCore
import NIOConcurrencyHelpers
import XDSClient

/// Why an outbound connection could not be set up; mapped to SOCKS5 reply codes (RFC 1928 §6).
public enum OutboundError: Error, Sendable, CustomStringConvertible {
    /// No workload or service has this address or name.
    case unknownDestination(String)
    /// With per-workload identities: the connection comes from no workload of this node.
    case unknownSource(String)
    /// The HBONE peer refused the CONNECT or the tunnel could not be opened.
    case rejected(HBONEError)
    /// The plain TCP connect to a non-HBONE workload failed.
    case passthroughFailed(TCPPassthroughError)
    case failed(any Error)

    /// The SOCKS5 reply code for this failure.
    public var socksReply: UInt8 {
        switch self {
        case .unknownDestination: return 0x04  // host unreachable
        case .unknownSource: return 0x02  // not allowed by ruleset
        case .rejected(let error) where error.status == 401: return 0x02  // not allowed by ruleset
        case .rejected: return 0x05  // connection refused
        case .passthroughFailed: return 0x05  // connection refused
        case .failed: return 0x01  // general failure
        }
    }

    /// The `response_flags` value Istio's metrics give this failure.
    public var responseFlag: String {
        switch self {
        case .unknownDestination, .unknownSource: return "IDENTITY_ERROR"
        case .rejected(let error) where error.status == 401: return "DENY"
        case .rejected, .passthroughFailed, .failed: return "CONNECT"
        }
    }

    public var description: String {
        switch self {
        case .unknownDestination(let what): return "unknown destination \(what)"
        case .unknownSource(let what): return "no local workload at source \(what)"
        case .rejected(let error): return "\(error)"
        case .passthroughFailed(let error): return "\(error)"
        case .failed(let error): return "\(error)"
        }
    }
}

/// Where an outbound connection goes: a workload (tunnelled with HBONE when it
/// is in the mesh, plain TCP otherwise) at a port.
public struct OutboundRoute: Sendable {
    /// The destination workload; nil for an address the mesh does not know (passthrough).
    public var workload: Workload?
    /// The address and port connected to.
    public var address: String
    public var port: Int
    /// The Service the destination was reached through, if any.
    public var service: Service?
}

/// Finds the destination workload for an outbound connection: HBONE workloads are
/// tunnelled to their HBONE address, TCP workloads (outside the mesh) get a
/// plain TCP passthrough, as Istio's ztunnel does. A Service VIP or host name
/// picks one of its healthy (ready) endpoints round robin.
public struct OutboundRouter: Sendable {
    public let store: WorkloadStore
    public let client: HBONEClient
    public let hbonePort: Int
    /// The identity to present for a connection from `source` (the source
    /// workload's); nil when the source is no local workload. Absent when every
    /// tunnel presents the node's one SVID.
    public let sourceIdentity: (@Sendable (SocketAddress?) -> SPIFFEID?)?
    /// Makes passthrough connections from inside the source pod's namespace (in-pod capture).
    public let connector: (any WorkloadConnector)?
    public let logger: Logger
    private let next = RoundRobin()

    public init(store: WorkloadStore, client: HBONEClient, hbonePort: Int = 15008, sourceIdentity: (@Sendable (SocketAddress?) -> SPIFFEID?)?,
                connector: (any WorkloadConnector)? = nil, logger: Logger) {
        self.store = store
        self.client = client
        self.hbonePort = hbonePort
        self.sourceIdentity = sourceIdentity
        self.connector = connector
        self.logger = logger
    }

    /// The route for a destination given as IP or host name. With `passthroughUnknown`
    /// (captured traffic, whose destination is an IP the application chose), an address
    /// the mesh does not know is passed through as plain TCP instead of refused.
    public func route(host: String, port: Int, passthroughUnknown: Bool = false) throws(OutboundError) -> OutboundRoute {
        if let workload = store.workload(address: host) { return OutboundRoute(workload: workload, address: host, port: port) }
        let service = store.service(vip: host) ?? store.service(hostname: host)
        guard let service, let servicePort = UInt16(exactly: port) else {
            if passthroughUnknown { return OutboundRoute(workload: nil, address: host, port: port) }
            throw .unknownDestination("\(host):\(port)")
        }
        let backing = store.endpoints(of: service).filter { !$0.workloadIPs.isEmpty }
        let endpoints = backing.filter(\.healthy)
        guard !endpoints.isEmpty else {
            let why = backing.isEmpty ? "has no endpoints" : "has no ready endpoints (\(backing.count) not ready)"
            throw .unknownDestination("\(host):\(port) (service \(service.key) \(why))")
        }
        let endpoint = endpoints[next.take(service.key) % endpoints.count]
        let target = endpoint.services[service.key]?[servicePort] ?? service.ports[servicePort] ?? servicePort
        return OutboundRoute(workload: endpoint, address: endpoint.workloadIPs[0], port: Int(target), service: service)
    }

    /// Connects `socket` to host:port: an HBONE tunnel or a TCP passthrough, by the
    /// workload's protocol. `prelude` (a SOCKS5 success reply) is written to `socket`
    /// before any forwarded byte; `onClose` gets the byte counts (to the destination, from it).
    public func connect(host: String, port: Int, source: SocketAddress?, socket: any Channel, prelude: ByteBuffer? = nil,
                        passthroughUnknown: Bool = false,
                        onClose: @escaping @Sendable (OutboundRoute, _ sent: UInt64, _ received: UInt64) -> Void = { _, _, _ in })
        async throws(OutboundError) -> OutboundRoute {
        let route = try route(host: host, port: port, passthroughUnknown: passthroughUnknown)
        let sourceText = source.flatMap { try? HBONEAuthority($0).description }
        guard let workload = route.workload, workload.tunnelProtocol == .hbone else {
            let destination: SocketAddress
            do {
                destination = try SocketAddress(ipAddress: route.address, port: route.port)
            } catch {
                throw .unknownDestination("\(route.address):\(route.port)")
            }
            do {
                try await TCPPassthrough.splice(socket, to: destination, prelude: prelude, connector: connector, workload: source?.ipAddress) { sent, received in
                    onClose(route, sent, received)
                }
            } catch let error as TCPPassthroughError {
                throw .passthroughFailed(error)
            } catch {
                throw .failed(error)
            }
            return route
        }
        var identity: SPIFFEID?
        if let sourceIdentity {
            guard let found = sourceIdentity(source) else { throw .unknownSource(sourceText ?? "unknown") }
            identity = found
        }
        do {
            let request = HBONEConnectRequest(
                authority: HBONEAuthority(host: route.address, port: route.port),
                peer: try SocketAddress(ipAddress: route.address, port: hbonePort),
                expectedIdentities: [try workload.identity()],
                forwarding: HBONEForwarding(source: sourceText),
                sourceIdentity: identity
            )
            try await client.tunnel(request, splicingWith: socket, prelude: prelude) { sent, received in
                onClose(route, sent, received)
            }
        } catch let error as HBONEError {
            throw .rejected(error)
        } catch {
            throw .failed(error)
        }
        return route
    }
}

/// Per-service counters for round-robin endpoint choice.
final class RoundRobin: Sendable {
    private let counters = NIOLockedValueBox<[String: Int]>([:])

    func take(_ key: String) -> Int {
        counters.withLockedValue { counters in
            let value = counters[key, default: 0]
            counters[key] = value &+ 1
            return value & Int.max
        }
    }
}
