import PolicyEngine

/// Istio ambient's labels: which pods are in the mesh and which waypoint
/// serves a pod or a Service.
public enum AmbientEnrollment {
    /// `istio.io/dataplane-mode`.
    public static let dataplaneModeLabel = "istio.io/dataplane-mode"
    /// `istio.io/use-waypoint`.
    public static let useWaypointLabel = "istio.io/use-waypoint"

    /// True when the pod is captured: its own label says `ambient`, or its
    /// namespace's does and the pod does not opt out with `none`.
    public static func isEnrolled(_ pod: ClusterPod, in state: ClusterState) -> Bool {
        isEnrolled(pod, namespaceLabels: state.namespaceLabels(pod.namespace))
    }

    /// ``isEnrolled(_:in:)`` with the labels of the pod's namespace at hand.
    public static func isEnrolled(_ pod: ClusterPod, namespaceLabels: Labels) -> Bool {
        switch pod.labels[dataplaneModeLabel] {
        case "ambient": return true
        case "none": return false
        default: return namespaceLabels[dataplaneModeLabel] == "ambient"
        }
    }

    /// The waypoint Gateway serving `pod`'s traffic as a workload: the pod's
    /// `istio.io/use-waypoint`, else its namespace's (`none` opts out), when
    /// that Gateway exists and is a waypoint for workloads (`workload` or `all`).
    public static func waypoint(for pod: ClusterPod, namespaceLabels: Labels, gateways: [ClusterGateway]) -> ClusterGateway? {
        let name = pod.labels[useWaypointLabel] ?? namespaceLabels[useWaypointLabel]
        return gateway(named: name, namespace: pod.namespace, in: gateways, for: ["workload", "all"])
    }

    /// The waypoint serving `service`: the Service's label, else its namespace's,
    /// when that Gateway exists and is a waypoint for services (`service` or `all`).
    public static func waypoint(for service: ClusterService, in state: ClusterState) -> ClusterGateway? {
        let name = service.labels[useWaypointLabel] ?? state.namespaceLabels(service.namespace)[useWaypointLabel]
        return gateway(named: name, namespace: service.namespace, in: state.gateways, for: ["service", "all"])
    }

    private static func gateway(named name: String?, namespace: String, in gateways: [ClusterGateway], for kinds: Set<String>) -> ClusterGateway? {
        guard let name, name != "none" else { return nil }
        return gateways.first { $0.namespace == namespace && $0.name == name && $0.isWaypoint && kinds.contains($0.waypointFor) }
    }
}
