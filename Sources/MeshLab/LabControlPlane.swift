/// How the lab runs `mesh-controlplane`: how many replicas read the same
/// manifests and CA, and flags added to each.
///
/// Replica 0 is `controlplane` and serves xDS and the CA on the wire's gateway
/// address at 15012 (monitoring 15014), as istiod does; replica N (N ≥ 1) is
/// `controlplane-(N+1)` on 15012 + 100·N (monitoring 15014 + 100·N). Every
/// ztunnel is given all replicas, in that order, and fails over between them.
public struct LabControlPlane: Codable, Sendable, Hashable {
    /// Replicas started by `up` (at least 1).
    public var replicas: Int
    /// Flags added to every replica, e.g. `["--workload-cert-ttl", "40s"]`.
    public var arguments: [String]

    public init(replicas: Int = 1, arguments: [String] = []) {
        self.replicas = max(1, replicas)
        self.arguments = arguments
    }

    /// The process name of replica `replica` (0-based).
    public static func name(replica: Int) -> String { replica == 0 ? "controlplane" : "controlplane-\(replica + 1)" }

    /// Where replica `replica` serves xDS and the CA (SPIFFE mTLS).
    public func address(replica: Int, gateway: String) -> String { "\(gateway):\(15012 + 100 * replica)" }

    /// Where replica `replica` serves /metrics, /ready and /debug/syncz.
    public func monitoringAddress(replica: Int, gateway: String) -> String { "\(gateway):\(15014 + 100 * replica)" }
}
