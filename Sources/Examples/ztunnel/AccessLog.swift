import Logging
import NIOCore
import NodeProxy

/// One log line per captured connection, naming source and destination
/// workloads, the SPIFFE IDs, bytes each way and duration (as ztunnel's access log).
struct AccessLog: CaptureObserver {
    let logger: Logger

    func outboundOpened(_ connection: CapturedConnection) {}

    func outboundClosed(_ connection: CapturedConnection, sent: UInt64, received: UInt64) {
        let destination = connection.route.workload
        logger.info("connection complete", metadata: [
            "direction": "outbound",
            "src.addr": "\(connection.source.map { "\($0)" } ?? "-")",
            "src.workload": "\(connection.pod.name)", "src.namespace": "\(connection.pod.namespace)",
            "dst.addr": "\(connection.route.address):\(connection.route.port)",
            "dst.workload": "\(destination?.name ?? "-")", "dst.namespace": "\(destination?.namespace ?? "-")",
            "dst.identity": "\(destination.flatMap { try? $0.identity() }.map { "\($0)" } ?? "-")",
            "dst.service": "\(connection.route.service?.hostname ?? "-")",
            "protocol": "\(destination?.tunnelProtocol == .hbone ? "HBONE" : "TCP")",
            "bytes_sent": "\(sent)", "bytes_recv": "\(received)", "duration": "\(connection.duration)",
        ])
    }

    func outboundFailed(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, error: OutboundError) {
        logger.info("connection failed", metadata: [
            "direction": "outbound", "src.workload": "\(pod.name)", "src.namespace": "\(pod.namespace)",
            "dst.addr": "\(destination)", "error": "\(error)", "response_flags": "\(error.responseFlag)",
        ])
    }

    func inboundPlaintextDenied(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, reason: String) {
        logger.info("connection denied", metadata: [
            "direction": "inbound", "src.addr": "\(source.map { "\($0)" } ?? "-")", "dst.workload": "\(pod.name)",
            "dst.namespace": "\(pod.namespace)", "dst.addr": "\(destination)", "reason": "\(reason)", "response_flags": "DENY",
        ])
    }

    func inboundPlaintextClosed(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, duration: Duration, sent: UInt64, received: UInt64) {
        logger.info("connection complete", metadata: [
            "direction": "inbound", "protocol": "TCP", "src.addr": "\(source.map { "\($0)" } ?? "-")",
            "dst.workload": "\(pod.name)", "dst.namespace": "\(pod.namespace)", "dst.addr": "\(destination)",
            "bytes_sent": "\(received)", "bytes_recv": "\(sent)", "duration": "\(duration)",
        ])
    }
}
