import HBONE
import Logging
import MeshIdentity
import NIOCore
import XDSClient

/// Why an outbound connection could not be set up; mapped to SOCKS5 reply codes (RFC 1928 §6).
enum OutboundError: Error {
    /// No workload or service has this address or name.
    case unknownDestination(String)
    /// With per-workload identities: the connection comes from no workload of this node.
    case unknownSource(String)
    /// The HBONE peer refused the CONNECT or the tunnel could not be opened.
    case rejected(HBONEError)
    /// The plain TCP connect to a non-HBONE workload failed.
    case passthroughFailed(TCPPassthroughError)
    case failed(any Error)

    var socksReply: UInt8 {
        switch self {
        case .unknownDestination: return 0x04  // host unreachable
        case .unknownSource: return 0x02  // not allowed by ruleset
        case .rejected(let error) where error.status == 401: return 0x02  // not allowed by ruleset
        case .rejected: return 0x05  // connection refused
        case .passthroughFailed: return 0x05  // connection refused
        case .failed: return 0x01  // general failure
        }
    }
}

/// Finds the destination workload for an outbound connection: HBONE workloads are
/// tunnelled to their node's HBONE address, TCP workloads (outside the mesh) get a
/// plain TCP passthrough, as Istio ztunnel does.
struct OutboundRouter: Sendable {
    let store: WorkloadStore
    let client: HBONEClient
    let hbonePort: Int
    /// The identity to present for a connection from `source` (the source
    /// workload's); nil when the source is no local workload. Absent when every
    /// tunnel presents the node's one SVID.
    let sourceIdentity: (@Sendable (SocketAddress?) -> SPIFFEID?)?
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

    /// Connects `socket` to host:port: an HBONE tunnel or a TCP passthrough, by the workload's protocol.
    func connect(host: String, port: Int, source: SocketAddress?, socket: any Channel) async throws(OutboundError) {
        let (workload, targetPort) = try route(host: host, port: port)
        guard let ip = workload.workloadIPs.first else { throw .unknownDestination(workload.uid) }
        // SOCKS5 success reply (bound address 0.0.0.0:0), written before any forwarded byte.
        let success = ByteBuffer(bytes: [5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        let sourceText = source.flatMap { try? HBONEAuthority($0).description }
        switch workload.tunnelProtocol {
        case .tcp:
            let destination: SocketAddress
            do {
                destination = try SocketAddress(ipAddress: ip, port: targetPort)
            } catch {
                throw .unknownDestination("\(ip):\(targetPort)")
            }
            do {
                let logger = self.logger
                try await TCPPassthrough.splice(socket, to: destination, prelude: success) { sent, received in
                    logger.info("outbound passthrough closed", metadata: [
                        "destination": "\(destination)", "workload": "\(workload.uid)", "source": "\(sourceText ?? "-")",
                        "bytes_to_destination": "\(sent)", "bytes_from_destination": "\(received)",
                    ])
                }
            } catch let error as TCPPassthroughError {
                throw .passthroughFailed(error)
            } catch {
                throw .failed(error)
            }
        case .hbone:
            var identity: SPIFFEID?
            if let sourceIdentity {
                guard let found = sourceIdentity(source) else { throw .unknownSource(sourceText ?? "unknown") }
                identity = found
            }
            do {
                let request = HBONEConnectRequest(
                    authority: HBONEAuthority(host: ip, port: targetPort),
                    peer: try SocketAddress(ipAddress: ip, port: hbonePort),
                    expectedIdentities: [try workload.identity()],
                    forwarding: HBONEForwarding(source: sourceText),
                    sourceIdentity: identity
                )
                try await client.tunnel(request, splicingWith: socket, prelude: success)
            } catch let error as HBONEError {
                throw .rejected(error)
            } catch {
                throw .failed(error)
            }
        }
    }
}
