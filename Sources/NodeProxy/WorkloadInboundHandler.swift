import HBONE
import Logging
import NIOCore
import XDSClient

/// Inbound HBONE decisions from the WorkloadStore: the destination must be a
/// workload on this node; its policies decide; the upstream is the workload's ip:port.
public struct WorkloadInboundHandler: HBONEInboundHandler {
    public let store: WorkloadStore
    public let node: String
    public let logger: Logger

    public init(store: WorkloadStore, node: String, logger: Logger) {
        self.store = store
        self.node = node
        self.logger = logger
    }

    public func resolve(_ request: HBONEInboundRequest) async -> HBONEUpstream? {
        guard let workload = store.workload(address: request.authority.host), workload.node == node,
              let address = request.authority.socketAddress else { return nil }
        return HBONEUpstream(address: address, name: workload.uid)
    }

    public func authorize(_ request: HBONEInboundRequest, upstream: HBONEUpstream) async -> HBONEAuthorization {
        guard let workload = store.workload(address: request.authority.host), let port = UInt16(exactly: request.authority.port) else {
            return .deny(reason: "unknown destination")
        }
        // The `forwarded` source is the peer's word: it counts only when the workload at that
        // address has the peer's own verified identity; otherwise the connection's address does.
        let claimed = request.forwarding.source.flatMap { try? HBONEAuthority(parsing: $0).host }
        let source = claimed.flatMap { ip in store.workload(address: ip).flatMap { try? $0.identity() } == request.peerID ? ip : nil }
            ?? request.peerAddress?.ipAddress
        switch store.authorize(L4Connection(source: request.peerID, destination: workload, destinationPort: port,
                                            sourceAddress: source, destinationAddress: request.authority.host)) {
        case .allow: return .allow
        case .deny(let reason): return .deny(reason: reason)
        }
    }
}
