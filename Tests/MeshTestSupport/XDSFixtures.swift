import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshProto
import SwiftProtobuf
import XDSServer

// Shared by the XDSServer and XDSClient tests: an XDSServer on an ephemeral
// port and the Envoy resources they serve.

/// A hang guard expired while a test waited for something.
public struct TestTimeout: Error, CustomStringConvertible {
    public var what: String
    public init(what: String) { self.what = what }
    public var description: String { "hang guard expired waiting for \(what)" }
}

/// Runs an XDSServer on 127.0.0.1 port 0 for the duration of `body`.
public func withXDSServer<T: Sendable>(
    security: HTTP2ServerTransport.Posix.TransportSecurity = .plaintext,
    _ body: @Sendable (XDSServer, Int) async throws -> T
) async throws -> T {
    let server = XDSServer(cache: XDSSnapshotCache(), configuration: .init(host: "127.0.0.1", port: 0, transportSecurity: security))
    return try await withBackground(run: { try await server.run() }, shutdown: { server.shutdown() }) {
        try await body(server, try await server.listeningPort())
    }
}

// MARK: Fixtures

/// xDS resources a proxyless gRPC client and the ADS tests use.
public enum Fixture {
    public static func cluster(_ name: String, edsService: String? = nil, timeoutSeconds: Int64 = 1) -> Envoy_Config_Cluster_V3_Cluster {
        var cluster = Envoy_Config_Cluster_V3_Cluster()
        cluster.name = name
        cluster.type = .eds
        cluster.edsClusterConfig.edsConfig.ads = Envoy_Config_Core_V3_AggregatedConfigSource()
        cluster.edsClusterConfig.serviceName = edsService ?? name
        cluster.connectTimeout.seconds = timeoutSeconds
        return cluster
    }

    public static func endpoints(_ name: String, port: UInt32, host: String = "127.0.0.1") -> Envoy_Config_Endpoint_V3_ClusterLoadAssignment {
        var endpoint = Envoy_Config_Endpoint_V3_LbEndpoint()
        endpoint.endpoint.address.socketAddress.address = host
        endpoint.endpoint.address.socketAddress.portValue = port
        endpoint.healthStatus = .healthy
        var locality = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
        locality.locality.region = "r1"
        locality.locality.zone = "z1"
        locality.loadBalancingWeight = Google_Protobuf_UInt32Value(1)
        locality.lbEndpoints = [endpoint]
        var assignment = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
        assignment.clusterName = name
        assignment.endpoints = [locality]
        return assignment
    }

    public static func route(_ name: String, cluster: String) -> Envoy_Config_Route_V3_RouteConfiguration {
        var route = Envoy_Config_Route_V3_Route()
        route.match.prefix = ""
        route.route.cluster = cluster
        var host = Envoy_Config_Route_V3_VirtualHost()
        host.name = name + "-vh"
        host.domains = ["*"]
        host.routes = [route]
        var config = Envoy_Config_Route_V3_RouteConfiguration()
        config.name = name
        config.virtualHosts = [host]
        return config
    }

    /// A client-side (API) listener as proxyless gRPC expects: an HttpConnectionManager
    /// with the router filter, routes by RDS name or inline.
    public static func apiListener(_ name: String, rds: String? = nil, inlineCluster: String? = nil) throws -> Envoy_Config_Listener_V3_Listener {
        typealias HCM = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager
        var manager = HCM()
        manager.statPrefix = name
        if let rds {
            manager.rds.routeConfigName = rds
            manager.rds.configSource.ads = Envoy_Config_Core_V3_AggregatedConfigSource()
        } else if let inlineCluster {
            manager.routeConfig = route(name + "-inline", cluster: inlineCluster)
        }
        var router = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
        router.name = "envoy.filters.http.router"
        router.typedConfig = try Google_Protobuf_Any(message: Envoy_Extensions_Filters_Http_Router_V3_Router())
        manager.httpFilters = [router]
        var listener = Envoy_Config_Listener_V3_Listener()
        listener.name = name
        listener.apiListener.apiListener = try Google_Protobuf_Any(message: manager)
        return listener
    }

    public static func resource(_ name: String, _ message: some Message) throws -> XDSResource {
        try XDSResource(name: name, message: message)
    }

    public static func clusters(_ names: [String], timeoutSeconds: Int64 = 1) throws -> [XDSResource] {
        try names.map { try resource($0, cluster($0, timeoutSeconds: timeoutSeconds)) }
    }
}

