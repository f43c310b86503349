/// The xDS resource type URLs this project serves, and the order in which a
/// server pushes them.
public enum XDSTypeURL {
    /// Envoy `Listener` (LDS).
    public static let listener = "type.googleapis.com/envoy.config.listener.v3.Listener"
    /// Envoy `RouteConfiguration` (RDS).
    public static let routeConfiguration = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    /// Envoy `Cluster` (CDS).
    public static let cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    /// Envoy `ClusterLoadAssignment` (EDS).
    public static let clusterLoadAssignment = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    /// Envoy TLS `Secret` (SDS).
    public static let secret = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
    /// Istio ambient `Address` (workloads and services).
    public static let address = "type.googleapis.com/istio.workload.Address"
    /// Istio ambient L4 `Authorization`.
    public static let authorization = "type.googleapis.com/istio.security.Authorization"

    /// Envoy's make-before-break order: clusters, then their endpoints, then
    /// listeners, then the routes they reference. Other types follow in
    /// lexicographic order.
    public static let pushOrder: [String] = [cluster, clusterLoadAssignment, listener, routeConfiguration]

    /// Sorts `types` into push order.
    public static func sortedForPush(_ types: some Sequence<String>) -> [String] {
        types.sorted { lhs, rhs in
            let l = pushOrder.firstIndex(of: lhs) ?? pushOrder.count
            let r = pushOrder.firstIndex(of: rhs) ?? pushOrder.count
            return l == r ? lhs < rhs : l < r
        }
    }

    /// The subscription name that means "every resource of this type".
    public static let wildcard = "*"
}
