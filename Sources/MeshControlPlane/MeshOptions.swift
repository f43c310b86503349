/// Mesh-wide settings of the conversion, with istiod's defaults.
public struct MeshOptions: Hashable, Sendable {
    /// The SPIFFE trust domain of every workload identity.
    public var trustDomain: String
    /// The cluster ID in workload uids (`<cluster>//Pod/<ns>/<name>`).
    public var clusterID: String
    /// The DNS suffix of Service hostnames.
    public var domainSuffix: String
    /// The network of every address ("" is the default network).
    public var network: String
    /// Policies here without a selector apply mesh-wide.
    public var rootNamespace: String
    /// The HBONE port of waypoints and ztunnels.
    public var hbonePort: UInt32

    public init(trustDomain: String = "cluster.local", clusterID: String = "Kubernetes", domainSuffix: String = "cluster.local",
                network: String = "", rootNamespace: String = "istio-system", hbonePort: UInt32 = 15008) {
        self.trustDomain = trustDomain
        self.clusterID = clusterID
        self.domainSuffix = domainSuffix
        self.network = network
        self.rootNamespace = rootNamespace
        self.hbonePort = hbonePort
    }

    /// The workload uid of a pod, as istiod names it (`<cluster>//Pod/<ns>/<name>`).
    public func workloadUID(of pod: ClusterPod) -> String { workloadUID(podKey: pod.key) }

    /// The workload uid of the pod `namespace/name`.
    public func workloadUID(podKey: String) -> String { "\(clusterID)//Pod/\(podKey)" }
}
