import NIOConcurrencyHelpers
import IdentityServices
import Prometheus
import XDSServer

/// The control plane's Prometheus metrics, with istiod's names:
/// `pilot_xds` (connected clients by proxy type), `pilot_xds_pushes` and
/// `pilot_total_xds_rejects` (by xDS type), `pilot_proxy_convergence_time`
/// (seconds from a push to its ACK), `pilot_total_rejected_configs`,
/// `citadel_server_csr_count` and `citadel_server_success_cert_issuance_count`.
public final class ControlPlaneMetrics: XDSServerObserver, Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let convergence: DurationHistogram
    private let rejectedConfigs: Counter
    private let csrCount: Counter
    private let issuedCount: Counter
    private let caSeen = CounterMirror()
    /// Every proxy type reported so far, so a type whose last client left reads 0.
    private let proxyTypes = NIOLockedValueBox<Set<String>>(["ztunnel", "waypoint", "proxyless", "sidecar"])

    public init() {
        convergence = registry.makeDurationHistogram(
            descriptor: Self.name("pilot_proxy_convergence_time", "Delay in seconds between a config push and its acknowledgement by the proxy."),
            buckets: [.milliseconds(100), .milliseconds(500), .seconds(1), .seconds(3), .seconds(5), .seconds(10), .seconds(20), .seconds(30)])
        rejectedConfigs = registry.makeCounter(descriptor: Self.name("pilot_total_rejected_configs", "Configuration changes refused (the last good configuration stays in force)."))
        csrCount = registry.makeCounter(descriptor: Self.name("citadel_server_csr_count", "The number of CSRs received by the CA."))
        issuedCount = registry.makeCounter(descriptor: Self.name("citadel_server_success_cert_issuance_count", "The number of certificates issued by the CA."))
    }

    static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Istio's short name of an xDS type (`cds`, `eds`, `lds`, `rds`, `wds` for Address, `authorization`).
    static func shortType(_ typeURL: String) -> String {
        switch typeURL {
        case XDSTypeURL.cluster: return "cds"
        case XDSTypeURL.clusterLoadAssignment: return "eds"
        case XDSTypeURL.listener: return "lds"
        case XDSTypeURL.routeConfiguration: return "rds"
        case XDSTypeURL.secret: return "sds"
        case XDSTypeURL.address: return "wds"
        case XDSTypeURL.authorization: return "authorization"
        default: return String(typeURL.split(separator: ".").last ?? "unknown")
        }
    }

    public func pushed(typeURL: String) {
        registry.makeCounter(descriptor: Self.name("pilot_xds_pushes", "Pilot build and send errors for lds, rds, cds and eds."), labels: [("type", Self.shortType(typeURL))]).increment()
    }

    public func acknowledged(typeURL: String, delay: Duration) {
        convergence.record(delay)
    }

    public func rejected(typeURL: String, detail: String) {
        registry.makeCounter(descriptor: Self.name("pilot_total_xds_rejects", "Total number of xDS responses from pilot rejected by proxy."), labels: [("type", Self.shortType(typeURL))]).increment()
    }

    /// Counts a refused configuration change.
    public func configRefused() { rejectedConfigs.increment() }

    /// Brings the gauges sampled from elsewhere up to date and renders the exposition text.
    public func render(clients: [XDSConnectionStatus], ca: IstioCACounters.Values) -> String {
        var byType: [String: Int] = [:]
        for client in clients {
            let type = client.nodeID.split(separator: "~", maxSplits: 1).first.map(String.init) ?? ""
            byType[type.isEmpty ? "unknown" : type, default: 0] += 1
        }
        for type in proxyTypes.withLockedValue({ $0.formUnion(byType.keys); return $0 }) where byType[type] == nil { byType[type] = 0 }
        for (type, count) in byType {
            registry.makeGauge(descriptor: Self.name("pilot_xds", "Number of endpoints connected to this pilot using XDS."), labels: [("type", type)]).set(Double(count))
        }
        let (csrDelta, issuedDelta) = caSeen.advance(to: ca)
        csrCount.increment(by: Int64(csrDelta))
        issuedCount.increment(by: Int64(issuedDelta))
        return registry.emitToString()
    }
}

/// Remembers how much of the CA's counters was already added to the Prometheus counters.
private final class CounterMirror: Sendable {
    private let seen = NIOLockedValueBox<(Int, Int)>((0, 0))

    func advance(to values: IstioCACounters.Values) -> (Int, Int) {
        seen.withLockedValue { last in
            defer { last = (values.csrs, values.issued) }
            return (max(0, values.csrs - last.0), max(0, values.issued - last.1))
        }
    }
}
