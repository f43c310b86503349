import HBONE
import Logging
import NIOCore
import XDSClient

/// Inbound HBONE decisions from the WorkloadStore: the destination must be a
/// workload on this node; its policies decide; the upstream is the workload's ip:port.
///
/// A CONNECT for a workload on another node is unknown here (503): it is never forwarded.
/// With in-pod listeners, where the HBONE connection reached one pod's own address, a CONNECT
/// naming a different workload is denied (Istio's rule: the tunnel ends at the pod it reached),
/// and so is one for a captured pod's port that ztunnel itself holds (15001, 15006, 15008):
/// forwarded, it would reach ztunnel's own listener inside the pod.
public struct WorkloadInboundHandler: HBONEInboundHandler {
    public let store: WorkloadStore
    public let node: String
    public let logger: Logger
    /// Ports of captured (HBONE) pods that are ztunnel's own; CONNECTs to them are denied.
    public let reservedPorts: Set<Int>

    public init(store: WorkloadStore, node: String, reservedPorts: Set<Int> = InPodCapture.Ports().tcp, logger: Logger) {
        self.store = store
        self.node = node
        self.reservedPorts = reservedPorts
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
        if workload.tunnelProtocol == .hbone, reservedPorts.contains(Int(port)) {
            return .deny(reason: "port \(port) of \(request.authority.host) is ztunnel's own in-pod listener")
        }
        if let reached = request.localAddress?.ipAddress, reached != request.authority.host, store.workload(address: reached) != nil {
            return .deny(reason: "the CONNECT names \(request.authority.host) but the connection reached the HBONE listener of \(reached)")
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
