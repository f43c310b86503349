import HBONE
import NIOCore

/// Tells several observers the same events (metrics and access logs side by side).
public struct ObserverGroup: HBONEMetricsObserver, CaptureObserver {
    public var tunnels: [any HBONEMetricsObserver]
    public var captures: [any CaptureObserver]

    public init(tunnels: [any HBONEMetricsObserver] = [], captures: [any CaptureObserver] = []) {
        self.tunnels = tunnels
        self.captures = captures
    }

    public func tunnelOpened(_ info: HBONETunnelInfo) { for observer in tunnels { observer.tunnelOpened(info) } }
    public func tunnelClosed(_ info: HBONETunnelInfo, summary: HBONETunnelSummary) { for observer in tunnels { observer.tunnelClosed(info, summary: summary) } }
    public func handshakeFailed(peer: SocketAddress?, local: SocketAddress?, reason: String) {
        for observer in tunnels { observer.handshakeFailed(peer: peer, local: local, reason: reason) }
    }
    public func outboundOpened(_ connection: CapturedConnection) { for observer in captures { observer.outboundOpened(connection) } }
    public func outboundClosed(_ connection: CapturedConnection, sent: UInt64, received: UInt64) {
        for observer in captures { observer.outboundClosed(connection, sent: sent, received: received) }
    }
    public func outboundFailed(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, error: OutboundError) {
        for observer in captures { observer.outboundFailed(pod: pod, source: source, destination: destination, error: error) }
    }
    public func inboundPlaintextDenied(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, reason: String) {
        for observer in captures { observer.inboundPlaintextDenied(pod: pod, source: source, destination: destination, reason: reason) }
    }
    public func inboundPlaintextClosed(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, duration: Duration, sent: UInt64, received: UInt64) {
        for observer in captures { observer.inboundPlaintextClosed(pod: pod, source: source, destination: destination, duration: duration, sent: sent, received: received) }
    }
}
