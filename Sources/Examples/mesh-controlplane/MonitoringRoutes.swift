import Foundation
import IdentityServices
import MeshControlPlane
import MeshMonitoring
import XDSServer

/// istiod's monitoring endpoints on 15014.
enum MonitoringRoutes {
    static func reply(path: String, controlPlane: ControlPlane, servers: [XDSServer], metrics: ControlPlaneMetrics, ca: IstioCACounters) async -> MonitoringReply {
        let clients = servers.flatMap { $0.connectedClients() }
        switch path {
        case "/metrics", "/stats/prometheus":
            return MonitoringReply(contentType: "text/plain; version=0.0.4", body: metrics.render(clients: clients, ca: ca.snapshot()))
        case "/ready":
            return controlPlane.servedSet == nil ? MonitoringReply(status: .serviceUnavailable, body: "no configuration loaded\n") : MonitoringReply(body: "ready\n")
        case "/debug/syncz":
            return MonitoringReply(contentType: "application/json", body: SyncStatus.json(clients))
        default:
            return .notFound
        }
    }
}
