import Foundation
import HBONE
import MeshMonitoring
import XDSClient

/// ztunnel's admin endpoint (127.0.0.1:15000 in the node's namespace):
/// `/config_dump` (workloads, services, policies, captured pods and
/// certificates with expiry, as JSON), `/debug/xds` (the version of every xDS
/// resource held, by type: after a reconnect it equals what a fresh client gets),
/// `/logging?level=LEVEL` (read or set the log level), `/quitquitquit` (POST:
/// graceful shutdown) and `/healthz/ready`.
public struct ZtunnelAdmin: Sendable {
    /// One workload certificate ztunnel holds.
    public struct Certificate: Sendable {
        public var identity: String
        public var expiresAt: Date
        public var renewAt: Date

        public init(identity: String, expiresAt: Date, renewAt: Date) {
            self.identity = identity
            self.expiresAt = expiresAt
            self.renewAt = renewAt
        }
    }

    public let store: WorkloadStore
    public let capture: InPodCapture?
    public let certificates: @Sendable () async -> [Certificate]
    public let logLevel: @Sendable (String?) -> String?
    public let quit: @Sendable () -> Void
    /// The outbound HBONE pool, whose connections and open streams the dump reports.
    public let pool: HBONEConnectionPool?
    /// The xDS client whose resource versions `/debug/xds` reports (nil with a local config).
    public let xds: ADSClient?

    /// `logLevel(nil)` reads the level; `logLevel(name)` sets it and returns the new one (nil for an unknown name).
    public init(store: WorkloadStore, capture: InPodCapture?, pool: HBONEConnectionPool? = nil, xds: ADSClient? = nil,
                certificates: @escaping @Sendable () async -> [Certificate],
                logLevel: @escaping @Sendable (String?) -> String?, quit: @escaping @Sendable () -> Void) {
        self.store = store
        self.xds = xds
        self.capture = capture
        self.pool = pool
        self.certificates = certificates
        self.logLevel = logLevel
        self.quit = quit
    }

    public func reply(_ request: MonitoringRequest) async -> MonitoringReply {
        switch request.path {
        case "/config_dump":
            return MonitoringReply(contentType: "application/json", body: await configDump())
        case "/debug/xds":
            let versions = xds?.resourceVersions() ?? [:]
            let data = (try? JSONSerialization.data(withJSONObject: versions, options: [.prettyPrinted, .sortedKeys])) ?? Data("{}".utf8)
            return MonitoringReply(contentType: "application/json", body: String(decoding: data, as: UTF8.self) + "\n")
        case "/logging":
            if let level = request.query["level"] {
                guard let set = logLevel(level) else {
                    return MonitoringReply(status: .badRequest, body: "unknown level \(level) (trace, debug, info, notice, warning, error, critical)\n")
                }
                return MonitoringReply(body: "current log level is \(set)\n")
            }
            return MonitoringReply(body: "current log level is \(logLevel(nil) ?? "unknown")\n")
        case "/quitquitquit":
            guard request.method == "POST" else { return MonitoringReply(status: .methodNotAllowed, body: "POST /quitquitquit\n") }
            quit()
            return MonitoringReply(body: "OK\n")
        default:
            return .notFound
        }
    }

    /// The state as JSON.
    public func configDump() async -> String {
        let snapshot = store.snapshot
        let formatter = ISO8601DateFormatter()
        let workloads: [[String: Any]] = snapshot.workloads.map { workload in
            [
                "uid": workload.uid, "name": workload.name, "namespace": workload.namespace, "serviceAccount": workload.serviceAccount,
                "workloadIps": workload.workloadIPs, "node": workload.node, "protocol": workload.tunnelProtocol == .hbone ? "HBONE" : "TCP",
                "status": workload.healthy ? "Healthy" : "Unhealthy",
                "identity": (try? workload.identity()).map { "\($0)" } ?? "",
                "services": workload.services.keys.sorted(), "authorizationPolicies": workload.authorizationPolicies,
            ]
        }
        let services: [[String: Any]] = snapshot.services.map { service in
            [
                "name": service.name, "namespace": service.namespace, "hostname": service.hostname,
                "vips": service.vips.map { "\($0)" },
                "ports": Dictionary(uniqueKeysWithValues: service.ports.map { (String($0.key), Int($0.value)) }),
            ]
        }
        let policies: [[String: Any]] = snapshot.policies.map { policy in
            ["name": policy.name, "namespace": policy.namespace, "scope": "\(policy.scope)", "action": "\(policy.action)"]
        }
        let certificates: [[String: Any]] = await self.certificates().map { certificate in
            ["identity": certificate.identity, "expiresAt": formatter.string(from: certificate.expiresAt), "renewAt": formatter.string(from: certificate.renewAt)]
        }
        let captured: [[String: Any]] = (capture?.capturedPods ?? [:]).sorted { $0.key < $1.key }.map { ["pod": $0.key, "addresses": $0.value] }
        var dump: [String: Any] = [
            "workloads": workloads, "services": services, "policies": policies, "certificates": certificates, "capturedPods": captured,
        ]
        if let pool {
            dump["hbonePool"] = ["connections": await pool.connectionCount(), "activeStreams": await pool.activeStreamCount(),
                                 "keepaliveClosures": await pool.keepaliveClosureCount]
        }
        guard let data = try? JSONSerialization.data(withJSONObject: dump, options: [.prettyPrinted, .sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
