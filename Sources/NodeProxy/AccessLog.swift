import HBONE
import Logging
import NIOCore
import XDSClient

/// ztunnel's access log: one line per connection ("connection complete", or
/// "connection failed"/"connection denied"), naming the source and destination
/// addresses, workloads, namespaces and SPIFFE IDs, the bytes each way and
/// the duration. Inbound HBONE tunnels come through ``HBONEMetricsObserver``
/// (outbound ones only at debug level), captured connections through
/// ``CaptureObserver``; pass it to both.
public struct AccessLog: HBONEMetricsObserver, CaptureObserver {
    public let store: WorkloadStore
    public let logger: Logger

    public init(store: WorkloadStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    private func workload(_ address: String?) -> Workload? {
        address.flatMap { (try? HBONEAuthority(parsing: $0))?.host ?? $0 }.flatMap { store.workload(address: $0) }
    }

    private func names(_ prefix: String, _ workload: Workload?) -> Logger.Metadata {
        [
            "\(prefix).workload": "\(workload?.name ?? "-")",
            "\(prefix).namespace": "\(workload?.namespace ?? "-")",
        ]
    }

    // MARK: HBONE tunnels

    public func tunnelOpened(_ info: HBONETunnelInfo) {}

    public func tunnelClosed(_ info: HBONETunnelInfo, summary: HBONETunnelSummary) {
        // An outbound tunnel is the inside of a connection logged by its owner (a captured pod's
        // `outboundClosed`, or the SOCKS5 listener): at debug level only, so each connection is one info line.
        let level: Logger.Level = info.direction == .outbound ? .debug : .info
        guard logger.logLevel <= level else { return }
        let destination = workload(info.authority)
        var metadata: Logger.Metadata = [
            "direction": .string(info.direction.rawValue),
            "src.addr": "\(info.source ?? "-")", "dst.addr": "\(info.authority)",
            "status": "\(summary.status)", "response_flags": "\(summary.responseFlag.rawValue)",
            "bytes_to_destination": "\(summary.bytesToDestination)", "bytes_from_destination": "\(summary.bytesFromDestination)",
            "duration": "\(ContinuousClock.now - info.started)",
        ]
        switch info.direction {
        case .inbound:
            // The source's workload names are given only when they agree with the verified identity.
            let claimed = workload(info.source)
            let source = claimed.flatMap { try? $0.identity() } == info.peerID ? claimed : nil
            metadata.merge(names("src", source)) { $1 }
            metadata["src.identity"] = "\(info.peerID.map { "\($0)" } ?? "-")"
            metadata.merge(names("dst", destination)) { $1 }
            metadata["dst.identity"] = "\(destination.flatMap { try? $0.identity() }.map { "\($0)" } ?? "-")"
        case .outbound:
            metadata.merge(names("src", workload(info.source))) { $1 }
            metadata.merge(names("dst", destination)) { $1 }
            metadata["dst.identity"] = "\(info.peerID.map { "\($0)" } ?? "-")"
        }
        logger.log(level: level, summary.status == 200 ? "connection complete" : "connection refused", metadata: metadata)
    }

    // MARK: Captured connections

    public func outboundOpened(_ connection: CapturedConnection) {}

    public func outboundClosed(_ connection: CapturedConnection, sent: UInt64, received: UInt64) {
        let destination = connection.route.workload
        var metadata: Logger.Metadata = [
            "direction": "outbound",
            "src.addr": "\(connection.source.map { "\($0)" } ?? "-")",
            "src.workload": "\(connection.pod.name)", "src.namespace": "\(connection.pod.namespace)",
            "src.identity": "\(workload(connection.source?.ipAddress).flatMap { try? $0.identity() }.map { "\($0)" } ?? "-")",
            "dst.addr": "\(connection.route.address):\(connection.route.port)",
            "dst.service": "\(connection.route.service?.hostname ?? "-")",
            "protocol": "\(destination?.tunnelProtocol == .hbone ? "HBONE" : "TCP")",
            "bytes_to_destination": "\(sent)", "bytes_from_destination": "\(received)", "duration": "\(connection.duration)",
        ]
        metadata.merge(names("dst", destination)) { $1 }
        metadata["dst.identity"] = "\(destination?.tunnelProtocol == .hbone ? destination.flatMap { try? $0.identity() }.map { "\($0)" } ?? "-" : "-")"
        logger.info("connection complete", metadata: metadata)
    }

    public func outboundFailed(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, error: OutboundError) {
        logger.info("connection failed", metadata: [
            "direction": "outbound", "src.addr": "\(source.map { "\($0)" } ?? "-")", "src.workload": "\(pod.name)", "src.namespace": "\(pod.namespace)",
            "dst.addr": "\(destination)", "error": "\(error)", "response_flags": "\(error.responseFlag)",
        ])
    }

    public func inboundPlaintextDenied(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, reason: String) {
        var metadata: Logger.Metadata = [
            "direction": "inbound", "protocol": "TCP", "src.addr": "\(source.map { "\($0)" } ?? "-")", "src.identity": "-",
            "dst.addr": "\(destination)", "dst.workload": "\(pod.name)", "dst.namespace": "\(pod.namespace)",
            "reason": "\(reason)", "response_flags": "DENY",
        ]
        metadata.merge(names("src", workload(source?.ipAddress))) { $1 }
        logger.info("connection denied", metadata: metadata)
    }

    public func inboundPlaintextClosed(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, duration: Duration, sent: UInt64, received: UInt64) {
        var metadata: Logger.Metadata = [
            "direction": "inbound", "protocol": "TCP", "src.addr": "\(source.map { "\($0)" } ?? "-")", "src.identity": "-",
            "dst.addr": "\(destination)", "dst.workload": "\(pod.name)", "dst.namespace": "\(pod.namespace)",
            "bytes_to_destination": "\(sent)", "bytes_from_destination": "\(received)", "duration": "\(duration)",
        ]
        metadata.merge(names("src", workload(source?.ipAddress))) { $1 }
        logger.info("connection complete", metadata: metadata)
    }
}
