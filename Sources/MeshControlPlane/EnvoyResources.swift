import Foundation
import MeshProto
import PolicyEngine
import SwiftProtobuf

/// Converts Services and HTTPRoutes into the Envoy resources that waypoints
/// and proxyless gRPC clients read, named as istiod names them:
///
/// - Cluster `outbound|PORT||HOST` (EDS over ADS, round robin) and its
///   ClusterLoadAssignment (the ready and unready endpoints, one locality);
/// - RouteConfiguration and Listener `HOST:PORT`: the listener is an API
///   listener (what `xds:///HOST:PORT` resolves in gRPC) whose
///   HttpConnectionManager takes routes over RDS; routes come from HTTPRoutes
///   attached to the Service (GAMMA), then a default route to the Service.
public struct EnvoyResources: Sendable {
    public let state: ClusterState
    public let plan: AddressPlan
    public let endpoints: ServiceEndpoints
    public let options: MeshOptions
    /// Pods by `namespace/name`: those whose endpoints are converted.
    private let podsByKey: [String: ClusterPod]
    private let nodesByName: [String: ClusterNode]
    private let servicesByKey: [String: ClusterService]

    static let routerFilterName = "envoy.filters.http.router"
    static let httpConnectionManagerName = "envoy.filters.network.http_connection_manager"

    /// `pods` limits the pods endpoints are looked up in (by `namespace/name`;
    /// nil: all of `state`'s), for a caller that converts the endpoints of a few namespaces.
    public init(state: ClusterState, plan: AddressPlan, endpoints: ServiceEndpoints, options: MeshOptions = MeshOptions(),
                pods: [String: ClusterPod]? = nil) {
        self.state = state
        self.plan = plan
        self.endpoints = endpoints
        self.options = options
        podsByKey = pods ?? Dictionary(state.pods.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        nodesByName = Dictionary(state.nodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        servicesByKey = Dictionary(state.services.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// `outbound|PORT||HOST`.
    public func clusterName(_ service: ClusterService, port: UInt16) -> String {
        "outbound|\(port)||\(service.hostname(domain: options.domainSuffix))"
    }

    /// `HOST:PORT`, the name of a Service port's Listener and RouteConfiguration.
    public func listenerName(_ service: ClusterService, port: UInt16) -> String {
        "\(service.hostname(domain: options.domainSuffix)):\(port)"
    }

    /// The EDS Cluster of a Service port.
    public func cluster(_ service: ClusterService, port: UInt16) -> Envoy_Config_Cluster_V3_Cluster {
        var cluster = Envoy_Config_Cluster_V3_Cluster()
        cluster.name = clusterName(service, port: port)
        cluster.type = .eds
        cluster.edsClusterConfig.edsConfig = Self.adsSource
        cluster.edsClusterConfig.serviceName = cluster.name
        cluster.connectTimeout = Google_Protobuf_Duration(seconds: 10)
        cluster.lbPolicy = .roundRobin
        return cluster
    }

    /// The endpoints of a Service port, grouped by the locality of their node
    /// (`topology.kubernetes.io/region` and `zone` labels; empty when unset).
    /// Every locality is present and weighted by its endpoint count, as gRPC requires.
    public func loadAssignment(_ service: ClusterService, port: UInt16) -> Envoy_Config_Endpoint_V3_ClusterLoadAssignment {
        var assignment = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
        assignment.clusterName = clusterName(service, port: port)
        var localities: [Envoy_Config_Core_V3_Locality: [Envoy_Config_Endpoint_V3_LbEndpoint]] = [:]
        for endpoint in endpoints.endpoints(service: service.key, port: port) {
            var lb = Envoy_Config_Endpoint_V3_LbEndpoint()
            var address = Envoy_Config_Core_V3_SocketAddress()
            address.address = endpoint.address.description
            address.portValue = UInt32(endpoint.targetPort)
            var e = Envoy_Config_Endpoint_V3_Endpoint()
            e.address.socketAddress = address
            lb.endpoint = e
            lb.healthStatus = endpoint.ready ? .healthy : .unhealthy
            localities[locality(of: endpoint), default: []].append(lb)
        }
        assignment.endpoints = localities
            .sorted { ($0.key.region, $0.key.zone) < ($1.key.region, $1.key.zone) }
            .map { locality, endpoints in
                var group = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
                group.locality = locality
                group.lbEndpoints = endpoints
                group.loadBalancingWeight = Google_Protobuf_UInt32Value(UInt32(endpoints.count))
                return group
            }
        return assignment
    }

    private func locality(of endpoint: ServiceEndpoint) -> Envoy_Config_Core_V3_Locality {
        var locality = Envoy_Config_Core_V3_Locality()
        guard let pod = endpoint.pod.flatMap({ podsByKey[$0] }), let node = pod.nodeName.flatMap({ nodesByName[$0] }) else { return locality }
        locality.region = node.labels["topology.kubernetes.io/region"] ?? ""
        locality.zone = node.labels["topology.kubernetes.io/zone"] ?? ""
        return locality
    }

    /// The routes of a Service port: HTTPRoutes whose parentRefs name the
    /// Service (and this port, or no port), in name order, then a default
    /// route to the Service itself.
    public func routeConfiguration(_ service: ClusterService, port: UInt16) -> Envoy_Config_Route_V3_RouteConfiguration {
        let host = service.hostname(domain: options.domainSuffix)
        var virtualHost = Envoy_Config_Route_V3_VirtualHost()
        virtualHost.name = listenerName(service, port: port)
        var domains = [host, "\(host):\(port)", service.name, "\(service.name):\(port)",
                       "\(service.name).\(service.namespace)", "\(service.name).\(service.namespace):\(port)"]
        if let vip = plan.serviceIPs[service.key] { domains += ["\(vip)", "\(vip):\(port)"] }
        virtualHost.domains = domains
        let attached = state.httpRoutes
            .filter { route in
                route.parentRefs.contains { $0.kind == "Service" && $0.namespace == service.namespace && $0.name == service.name && ($0.port == nil || $0.port == port) }
            }
            .sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        virtualHost.routes = Self.byPrecedence(attached.flatMap(rankedRoutes))
        var fallback = Envoy_Config_Route_V3_Route()
        fallback.name = "default"
        fallback.match.prefix = "/"
        fallback.route.cluster = clusterName(service, port: port)
        virtualHost.routes.append(fallback)
        var config = Envoy_Config_Route_V3_RouteConfiguration()
        config.name = listenerName(service, port: port)
        config.virtualHosts = [virtualHost]
        return config
    }

    /// The routes of one HTTPRoute. Backends that name no Service port with a
    /// cluster (unknown, headless, not TCP) or have weight 0 are left out; a
    /// rule left without backends gets no route. `PathPrefix /a` matches `/a`
    /// and `/a/...` but not `/ab`, as Gateway API says.
    public func routes(_ route: ClusterHTTPRoute) -> [Envoy_Config_Route_V3_Route] {
        rankedRoutes(route).map(\.route)
    }

    /// Gateway API's precedence of a match: exact paths before prefixes, longer
    /// paths first, a method match before none, more header matches first.
    struct Rank: Comparable {
        var pathKind: Int
        var negativePathLength: Int
        var noMethod: Int
        var negativeHeaders: Int

        init(_ match: ClusterHTTPRoute.Match) {
            pathKind = match.pathType == .prefix ? 1 : 0
            negativePathLength = -match.path.count
            noMethod = match.method == nil ? 1 : 0
            negativeHeaders = -match.headers.count
        }

        static func < (a: Rank, b: Rank) -> Bool {
            (a.pathKind, a.negativePathLength, a.noMethod, a.negativeHeaders) < (b.pathKind, b.negativePathLength, b.noMethod, b.negativeHeaders)
        }
    }

    func rankedRoutes(_ route: ClusterHTTPRoute) -> [(route: Envoy_Config_Route_V3_Route, rank: Rank)] {
        var result: [(route: Envoy_Config_Route_V3_Route, rank: Rank)] = []
        for (ruleIndex, rule) in route.rules.enumerated() {
            var action = Envoy_Config_Route_V3_RouteAction()
            let backends = rule.backends.compactMap { backend -> (String, UInt32)? in
                guard backend.weight > 0, let service = servicesByKey["\(backend.namespace)/\(backend.name)"], !service.headless,
                      service.ports.contains(where: { $0.port == backend.port && $0.protocol == .tcp }) else { return nil }
                return (clusterName(service, port: backend.port), backend.weight)
            }
            guard !backends.isEmpty else { continue }
            if backends.count == 1 {
                action.cluster = backends[0].0
            } else {
                var weighted = Envoy_Config_Route_V3_WeightedCluster()
                weighted.clusters = backends.map { name, weight in
                    var c = Envoy_Config_Route_V3_WeightedCluster.ClusterWeight()
                    c.name = name
                    c.weight = Google_Protobuf_UInt32Value(weight)
                    return c
                }
                action.weightedClusters = weighted
            }
            for (matchIndex, match) in rule.matches.enumerated() {
                var headers: [Envoy_Config_Route_V3_HeaderMatcher] = []
                if let method = match.method { headers.append(Self.exactHeader(":method", method)) }
                for (name, value) in match.headers.sorted(by: { $0.key < $1.key }) { headers.append(Self.exactHeader(name, value)) }
                let name = "\(route.namespace)/\(route.name)/\(ruleIndex)/\(matchIndex)"
                for (suffix, path) in Self.pathMatches(match) {
                    var r = Envoy_Config_Route_V3_Route()
                    r.name = name + suffix
                    r.match = path
                    r.match.headers = headers
                    r.route = action
                    result.append((r, Rank(match)))
                }
            }
        }
        return result
    }

    /// Envoy path matches for a Gateway API path match: Exact is `path`; PathPrefix `/`
    /// is `prefix /`; PathPrefix `/a` (or `/a/`) is `path /a` plus `prefix /a/`.
    static func pathMatches(_ match: ClusterHTTPRoute.Match) -> [(String, Envoy_Config_Route_V3_RouteMatch)] {
        var exact = Envoy_Config_Route_V3_RouteMatch()
        switch match.pathType {
        case .exact, .regularExpression:
            exact.path = match.path
            return [("", exact)]
        case .prefix:
            var trimmed = match.path
            while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
            var prefix = Envoy_Config_Route_V3_RouteMatch()
            if trimmed == "/" {
                prefix.prefix = "/"
                return [("", prefix)]
            }
            exact.path = trimmed
            prefix.prefix = trimmed + "/"
            return [("", exact), ("/subpath", prefix)]
        }
    }

    /// Routes in Gateway API precedence (ranked on each match as written, before
    /// a PathPrefix is split into its Envoy forms); ties keep their order.
    static func byPrecedence(_ routes: [(route: Envoy_Config_Route_V3_Route, rank: Rank)]) -> [Envoy_Config_Route_V3_Route] {
        routes.enumerated()
            .sorted { ($0.element.rank, $0.offset) < ($1.element.rank, $1.offset) }
            .map(\.element.route)
    }

    /// The API listener of a Service port (gRPC's `xds:///HOST:PORT`).
    public func listener(_ service: ClusterService, port: UInt16) throws -> Envoy_Config_Listener_V3_Listener {
        let manager = try httpConnectionManager(routeConfigName: listenerName(service, port: port), statPrefix: listenerName(service, port: port))
        var listener = Envoy_Config_Listener_V3_Listener()
        listener.name = listenerName(service, port: port)
        listener.apiListener.apiListener = try Google_Protobuf_Any(message: manager)
        return listener
    }

    // MARK: Gateways (ingress)

    /// `gateway/NAMESPACE/NAME/PORT`: the Listener and RouteConfiguration of a Gateway's HTTP listeners on one port.
    public func gatewayListenerName(_ gateway: ClusterGateway, port: UInt16) -> String {
        "gateway/\(gateway.namespace)/\(gateway.name)/\(port)"
    }

    /// The ports of a Gateway's HTTP listeners.
    public func httpPorts(_ gateway: ClusterGateway) -> [UInt16] {
        Array(Set(gateway.listeners.filter { $0.protocol == "HTTP" }.map(\.port))).sorted()
    }

    /// The HTTPRoutes attached to a Gateway listener (by name, and section name or port when given).
    public func attachedRoutes(_ gateway: ClusterGateway, _ listener: ClusterGateway.Listener) -> [ClusterHTTPRoute] {
        state.httpRoutes
            .filter { route in
                route.parentRefs.contains { ref in
                    ref.kind == "Gateway" && ref.namespace == gateway.namespace && ref.name == gateway.name
                        && (ref.sectionName == nil || ref.sectionName == listener.name) && (ref.port == nil || ref.port == listener.port)
                }
            }
            .sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
    }

    /// The routes of a Gateway's HTTP listeners on `port`: one virtual host per
    /// hostname (a route's `hostnames` that its listener's hostname admits, else
    /// the listener's, else `*`), so every domain is in exactly one virtual host
    /// and every route in it once; routes in Gateway API precedence.
    public func gatewayRouteConfiguration(_ gateway: ClusterGateway, port: UInt16) -> Envoy_Config_Route_V3_RouteConfiguration {
        var attached: [String: [String: ClusterHTTPRoute]] = [:]
        for listener in gateway.listeners where listener.protocol == "HTTP" && listener.port == port {
            for route in attachedRoutes(gateway, listener) {
                for domain in Self.hostnames(route: route.hostnames, listener: listener.hostname) {
                    attached[domain, default: [:]]["\(route.namespace)/\(route.name)"] = route
                }
            }
        }
        var hosts: [String: [(route: Envoy_Config_Route_V3_Route, rank: Rank)]] = [:]
        for (domain, byKey) in attached {
            hosts[domain] = byKey.keys.sorted().flatMap { rankedRoutes(byKey[$0]!) }
        }
        var config = Envoy_Config_Route_V3_RouteConfiguration()
        config.name = gatewayListenerName(gateway, port: port)
        config.virtualHosts = hosts.keys.sorted().map { domain in
            var host = Envoy_Config_Route_V3_VirtualHost()
            host.name = "\(config.name)/\(domain)"
            host.domains = [domain]
            host.routes = Self.byPrecedence(hosts[domain] ?? [])
            return host
        }
        return config
    }

    /// The hostnames a route serves on a listener: its own that the listener's
    /// admits (equal, or under a `*.` wildcard), or the listener's when the
    /// route names none, or `*` when neither does.
    static func hostnames(route: [String], listener: String?) -> Set<String> {
        guard let listener else { return route.isEmpty ? ["*"] : Set(route) }
        guard !route.isEmpty else { return [listener] }
        var admitted = Set<String>()
        for host in route {
            if host == listener || (listener.hasPrefix("*.") && host.hasSuffix(String(listener.dropFirst()))) {
                admitted.insert(host)  // the route's own name, at or under the listener's
            } else if host.hasPrefix("*.") && listener.hasSuffix(String(host.dropFirst())) {
                admitted.insert(listener)  // a wider route wildcard serves the listener's name
            }
        }
        return admitted
    }

    /// The Listener of a Gateway's HTTP listeners on `port`: every address, an
    /// HttpConnectionManager that takes ``gatewayRouteConfiguration(_:port:)`` over RDS.
    public func gatewayListener(_ gateway: ClusterGateway, port: UInt16) throws -> Envoy_Config_Listener_V3_Listener {
        let name = gatewayListenerName(gateway, port: port)
        var filter = Envoy_Config_Listener_V3_Filter()
        filter.name = Self.httpConnectionManagerName
        filter.typedConfig = try Google_Protobuf_Any(message: httpConnectionManager(routeConfigName: name, statPrefix: name))
        var chain = Envoy_Config_Listener_V3_FilterChain()
        chain.name = name
        chain.filters = [filter]
        var result = Envoy_Config_Listener_V3_Listener()
        result.name = name
        result.address.socketAddress.address = "0.0.0.0"
        result.address.socketAddress.portValue = UInt32(port)
        result.filterChains = [chain]
        return result
    }

    private func httpConnectionManager(routeConfigName: String, statPrefix: String) throws -> Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager {
        var manager = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager()
        manager.statPrefix = statPrefix
        var rds = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_Rds()
        rds.configSource = Self.adsSource
        rds.routeConfigName = routeConfigName
        manager.rds = rds
        var router = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
        router.name = Self.routerFilterName
        router.typedConfig = try Google_Protobuf_Any(message: Envoy_Extensions_Filters_Http_Router_V3_Router())
        manager.httpFilters = [router]
        return manager
    }

    private static var adsSource: Envoy_Config_Core_V3_ConfigSource {
        var source = Envoy_Config_Core_V3_ConfigSource()
        source.ads = Envoy_Config_Core_V3_AggregatedConfigSource()
        source.resourceApiVersion = .v3
        return source
    }

    private static func exactHeader(_ name: String, _ value: String) -> Envoy_Config_Route_V3_HeaderMatcher {
        var header = Envoy_Config_Route_V3_HeaderMatcher()
        header.name = name
        header.exactMatch = value
        return header
    }
}
