import HBONE
import Logging
import MeshIdentity
import NIOCore
import XDSClient

/// Why an outbound connection could not be tunnelled; mapped to SOCKS5 reply codes.
enum OutboundError: Error {
    case unknownDestination(String)
    case notMeshed(String)
    case rejected(HBONEError)
    case failed(any Error)

    var socksReply: UInt8 {
        switch self {
        case .unknownDestination, .notMeshed: return 0x04  // host unreachable
        case .rejected(let error) where error.status == 401: return 0x02  // not allowed by ruleset
        case .rejected: return 0x05  // connection refused
        case .failed: return 0x01  // general failure
        }
    }
}

/// Finds the destination workload for an outbound connection and tunnels to its HBONE address.
struct OutboundRouter: Sendable {
    let store: WorkloadStore
    let client: HBONEClient
    let hbonePort: Int
    let logger: Logger

    /// The workload and target port for a destination given as IP or host name.
    func route(host: String, port: Int) throws(OutboundError) -> (Workload, Int) {
        if let workload = store.workload(address: host) { return (workload, port) }
        let service = store.service(vip: host) ?? store.service(hostname: host)
        guard let service, let servicePort = UInt16(exactly: port) else { throw .unknownDestination("\(host):\(port)") }
        guard let endpoint = store.endpoints(of: service).first(where: { !$0.workloadIPs.isEmpty }) else {
            throw .unknownDestination("\(host):\(port) (service \(service.key) has no endpoints)")
        }
        let target = endpoint.services[service.key]?[servicePort] ?? service.ports[servicePort] ?? servicePort
        return (endpoint, Int(target))
    }

    /// Tunnels `socket` to host:port.
    func connect(host: String, port: Int, source: SocketAddress?, socket: any Channel) async throws(OutboundError) {
        let (workload, targetPort) = try route(host: host, port: port)
        guard workload.tunnelProtocol == .hbone else { throw .notMeshed("\(workload.uid) does not speak HBONE") }
        guard let ip = workload.workloadIPs.first else { throw .unknownDestination(workload.uid) }
        do {
            let request = HBONEConnectRequest(
                authority: HBONEAuthority(host: ip, port: targetPort),
                peer: try SocketAddress(ipAddress: ip, port: hbonePort),
                expectedIdentities: [try workload.identity()],
                forwarding: HBONEForwarding(source: source.flatMap { try? HBONEAuthority($0).description })
            )
            // SOCKS5 success reply (bound address 0.0.0.0:0), written before any tunnelled byte.
            try await client.tunnel(request, splicingWith: socket, prelude: ByteBuffer(bytes: [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]))
        } catch let error as HBONEError {
            throw .rejected(error)
        } catch {
            throw .failed(error)
        }
    }
}
