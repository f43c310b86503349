import HBONE
import MeshIdentity
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import XDSClient

/// ztunnel's Prometheus metrics with Istio's names and labels:
/// `istio_tcp_connections_opened_total`, `istio_tcp_connections_closed_total`,
/// `istio_tcp_connections_failed_total`, `istio_tcp_received_bytes_total`
/// (request bytes, towards the destination) and `istio_tcp_sent_bytes_total`
/// (response bytes), labelled by `reporter` (`source` for what a pod sent,
/// `destination` for what reached it), the source and destination workload,
/// namespace, principal and canonical service, `destination_service`,
/// `request_protocol`, `response_flags` and `connection_security_policy`;
/// and ztunnel's own `workload_manager_active_proxy_count`, `istio_xds_connection_state`
/// (1 while the xDS stream is up) and `ztunnel_workloads`; with per-workload
/// certificates, the Istio agent's `istio_agent_num_outgoing_requests_total` and
/// `istio_agent_num_failed_outgoing_requests_total` (`request_type="csr"`); and
/// `ztunnel_log_lines_dropped_total`, the log lines dropped because the log output was
/// not read fast enough (`MeshMonitoring.LogWriter`).
///
/// It observes inbound HBONE tunnels (``HBONEMetricsObserver``) and captured
/// connections (``CaptureObserver``); pass it to both.
public final class ZtunnelMetrics: HBONEMetricsObserver, CaptureObserver, Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let store: WorkloadStore
    /// Totals kept elsewhere, by counter name, as last rendered (the counters advance by the difference).
    private let renderedTotals = NIOLockedValueBox([String: Int]())

    public init(store: WorkloadStore) {
        self.store = store
    }

    /// One side of a connection, as the labels name it.
    struct Party {
        var workload = "unknown"
        var namespace = "unknown"
        var principal = "unknown"
        var canonicalService = "unknown"

        init() {}

        /// The labels of `workload`; its principal only when `verified` (a peer certificate proved it).
        init(_ workload: Workload?, verified: Bool = true) {
            guard let workload else { return }
            self.workload = workload.name
            namespace = workload.namespace
            if verified, workload.tunnelProtocol == .hbone { principal = (try? workload.identity()).map { "\($0)" } ?? "unknown" }
            canonicalService = workload.name
        }
    }

    private func labels(reporter: String, source: Party, destination: Party, service: String?, flag: String, mutualTLS: Bool) -> [(String, String)] {
        [
            ("reporter", reporter),
            ("source_workload", source.workload), ("source_workload_namespace", source.namespace),
            ("source_principal", source.principal), ("source_canonical_service", source.canonicalService),
            ("destination_workload", destination.workload), ("destination_workload_namespace", destination.namespace),
            ("destination_principal", destination.principal), ("destination_canonical_service", destination.canonicalService),
            ("destination_service", service ?? "unknown"),
            ("request_protocol", "tcp"), ("response_flags", flag),
            ("connection_security_policy", mutualTLS ? "mutual_tls" : "unknown"),
        ]
    }

    private func counter(_ name: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    /// The connection counters of one label set.
    private struct ConnectionCounters: Sendable {
        var opened, closed, received, sent: Counter
    }

    /// Opened, closed and byte counters by label values (the names are always those of `labels(...)`,
    /// in that order): made once per label set, as the registry validates and hashes every label on each lookup.
    private let connectionCounters = NIOLockedValueBox<[[String]: ConnectionCounters]>([:])

    private func counters(_ labels: [(String, String)]) -> ConnectionCounters {
        let key = labels.map(\.1)
        if let found = connectionCounters.withLockedValue({ $0[key] }) { return found }
        let made = ConnectionCounters(
            opened: counter("istio_tcp_connections_opened_total", "The total number of TCP connections opened", labels),
            closed: counter("istio_tcp_connections_closed_total", "The total number of TCP connections closed", labels),
            received: counter("istio_tcp_received_bytes_total", "The size of total bytes received during request in case of a TCP connection", labels),
            sent: counter("istio_tcp_sent_bytes_total", "The size of total bytes sent during response in case of a TCP connection", labels)
        )
        connectionCounters.withLockedValue { $0[key] = made }
        return made
    }

    private func opened(_ labels: [(String, String)]) {
        counters(labels).opened.increment()
    }

    private func closed(_ labels: [(String, String)], received: UInt64, sent: UInt64) {
        let counters = counters(labels)
        counters.closed.increment()
        counters.received.increment(by: Int64(clamping: received))
        counters.sent.increment(by: Int64(clamping: sent))
    }

    private func failed(_ labels: [(String, String)]) {
        // Rare: looked up in the registry each time, so that a label set that never failed has no such series.
        counter("istio_tcp_connections_failed_total", "The total number of TCP connections that failed to establish", labels).increment()
    }

    // MARK: Inbound HBONE (reporter destination)

    public func tunnelOpened(_ info: HBONETunnelInfo) {
        guard info.direction == .inbound else { return }
        opened(inboundLabels(info, flag: "-"))
    }

    public func tunnelClosed(_ info: HBONETunnelInfo, summary: HBONETunnelSummary) {
        guard info.direction == .inbound else { return }
        let flag = summary.responseFlag.rawValue
        let labels = inboundLabels(info, flag: flag)
        if summary.status != 200 {
            // Refused before it was opened: counted as opened, closed and failed, with the reason.
            opened(labels)
            failed(labels)
        }
        closed(labels, received: summary.bytesToDestination, sent: summary.bytesFromDestination)
    }

    public func handshakeFailed(peer: SocketAddress?, local: SocketAddress?, reason: String) {
        // No verified peer: the source is only an address; the destination is the pod whose listener it reached.
        let labels = labels(reporter: "destination", source: Party(peer?.ipAddress.flatMap { store.workload(address: $0) }),
                            destination: Party(local?.ipAddress.flatMap { store.workload(address: $0) }), service: nil,
                            flag: "TLS_FAILURE", mutualTLS: false)
        opened(labels)
        failed(labels)
        closed(labels, received: 0, sent: 0)
    }

    private func inboundLabels(_ info: HBONETunnelInfo, flag: String) -> [(String, String)] {
        let destinationHost = (try? HBONEAuthority(parsing: info.authority))?.host
        let destination = destinationHost.flatMap { store.workload(address: $0) }
        var source = Party(info.source.flatMap { try? HBONEAuthority(parsing: $0).host }.flatMap { store.workload(address: $0) })
        // The verified identity is the peer's; the workload labels stand only if they agree with it.
        if let peer = info.peerID, source.principal != "\(peer)" {
            source = Party()
            source.principal = "\(peer)"
        }
        return labels(reporter: "destination", source: source, destination: Party(destination), service: nil, flag: flag, mutualTLS: true)
    }

    // MARK: Captured connections (reporter source; inbound plaintext reporter destination)

    public func outboundOpened(_ connection: CapturedConnection) {
        opened(outboundLabels(connection, flag: "-"))
    }

    public func outboundClosed(_ connection: CapturedConnection, sent: UInt64, received: UInt64) {
        closed(outboundLabels(connection, flag: "-"), received: sent, sent: received)
    }

    public func outboundFailed(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, error: OutboundError) {
        let labels = labels(reporter: "source", source: Party(source?.ipAddress.flatMap { store.workload(address: $0) }),
                            destination: Party(destination.ipAddress.flatMap { store.workload(address: $0) }), service: nil,
                            flag: error.responseFlag, mutualTLS: false)
        opened(labels)
        failed(labels)
        closed(labels, received: 0, sent: 0)
    }

    private func outboundLabels(_ connection: CapturedConnection, flag: String) -> [(String, String)] {
        let source = Party(connection.source?.ipAddress.flatMap { store.workload(address: $0) })
        let destination = connection.route.workload
        return labels(reporter: "source", source: source, destination: Party(destination), service: connection.route.service?.hostname,
                      flag: flag, mutualTLS: destination?.tunnelProtocol == .hbone)
    }

    public func inboundPlaintextDenied(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, reason: String) {
        let labels = plaintextLabels(source: source, destination: destination, flag: "DENY")
        opened(labels)
        failed(labels)
        closed(labels, received: 0, sent: 0)
    }

    public func inboundPlaintextClosed(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, duration: Duration, sent: UInt64, received: UInt64) {
        let labels = plaintextLabels(source: source, destination: destination, flag: "-")
        opened(labels)
        closed(labels, received: sent, sent: received)
    }

    private func plaintextLabels(source: SocketAddress?, destination: SocketAddress, flag: String) -> [(String, String)] {
        // Plaintext: the source's identity is unproven.
        labels(reporter: "destination", source: Party(source?.ipAddress.flatMap { store.workload(address: $0) }, verified: false),
               destination: Party(destination.ipAddress.flatMap { store.workload(address: $0) }), service: nil, flag: flag, mutualTLS: false)
    }

    // MARK: Exposition

    /// Samples the gauges and renders the Prometheus text exposition.
    /// `certificateRequests` are the CSRs sent so far for local workloads and how many failed.
    public func render(capturedPods: Int, xds: ADSClient.Counters?, certificateRequests: (sent: Int, failed: Int)? = nil,
                       logLinesDropped: Int? = nil) -> String {
        if let certificateRequests {
            let labels = [("request_type", "csr")]
            advance("istio_agent_num_outgoing_requests_total", "Certificate signing requests sent to the CA", labels, to: certificateRequests.sent)
            advance("istio_agent_num_failed_outgoing_requests_total", "Certificate signing requests that failed (retried with backoff)", labels,
                    to: certificateRequests.failed)
        }
        if let logLinesDropped {
            advance("ztunnel_log_lines_dropped_total", "Log lines dropped because the log output was not read fast enough", [], to: logLinesDropped)
        }
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "workload_manager_active_proxy_count", unitName: "",
                                                            helpText: "The number of pods ztunnel captures (in-pod mode)")).set(Double(capturedPods))
        if let xds {
            registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "istio_xds_connection_state", unitName: "",
                                                                helpText: "1 while ztunnel's xDS stream to the control plane is up"))
                .set(xds.connected ? 1.0 : 0.0)
        }
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "ztunnel_workloads", unitName: "",
                                                            helpText: "Workloads in ztunnel's mesh state")).set(Double(store.counts.workloads))
        return registry.emitToString()
    }

    /// Advances a counter whose total is kept elsewhere to `total`.
    private func advance(_ name: String, _ help: String, _ labels: [(String, String)], to total: Int) {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let step = renderedTotals.withLockedValue { rendered in
            defer { rendered[key] = total }
            return total - rendered[key, default: 0]
        }
        counter(name, help, labels).increment(by: Int64(max(0, step)))
    }
}
