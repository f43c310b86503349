import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshProto
import SwiftProtobuf
import Testing
@testable import XDSServer
import MeshTestSupport

typealias DiscoveryRequest = Envoy_Service_Discovery_V3_DiscoveryRequest
typealias DiscoveryResponse = Envoy_Service_Discovery_V3_DiscoveryResponse
typealias DeltaRequest = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
typealias DeltaResponse = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse
typealias ADS = Envoy_Service_Discovery_V3_AggregatedDiscoveryService

struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "hang guard expired waiting for \(what)" }
}

/// Runs an XDSServer on 127.0.0.1 port 0 for the duration of `body`.
func withXDSServer<T: Sendable>(
    security: HTTP2ServerTransport.Posix.TransportSecurity = .plaintext,
    _ body: @Sendable (XDSServer, Int) async throws -> T
) async throws -> T {
    let server = XDSServer(cache: XDSSnapshotCache(), configuration: .init(host: "127.0.0.1", port: 0, transportSecurity: security))
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await server.run()
            return nil
        }
        defer {
            server.shutdown()
            group.cancelAll()
        }
        let port = try await server.listeningPort()
        let result = try await body(server, port)
        return result
    }
}

/// One client-side ADS stream whose requests the test sends and whose
/// responses it takes one by one.
final class ADSStream<Request: Message, Response: Message>: Sendable {
    let outgoing: AsyncStream<Request>.Continuation
    let incoming = Mailbox<Response>()
    private let task: Task<Void, any Error>

    init(
        port: Int,
        security: HTTP2ClientTransport.Posix.TransportSecurity = .plaintext,
        open: @escaping @Sendable (ADS.Client<HTTP2ClientTransport.Posix>, AsyncStream<Request>, Mailbox<Response>) async throws -> Void
    ) throws {
        let (requests, continuation) = AsyncStream<Request>.makeStream()
        self.outgoing = continuation
        let incoming = self.incoming
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port),
            transportSecurity: security
        )
        self.task = Task {
            defer { Task { await incoming.close() } }
            try await withGRPCClient(transport: transport) { client in
                try await open(ADS.Client(wrapping: client), requests, incoming)
            }
        }
    }

    func send(_ request: Request) { outgoing.yield(request) }

    func next(_ what: String = "a response") async throws -> Response {
        guard let response = await incoming.take() else { throw TestTimeout(what: what) }
        return response
    }

    /// Ends the request stream and waits for the RPC to finish.
    func close() async {
        outgoing.finish()
        _ = await task.result
    }

    /// Waits for the RPC to end on its own and returns how it ended.
    func outcome() async -> (any Error)? {
        if case .failure(let error) = await task.result { return error }
        return nil
    }

    /// Cancels the RPC without a half-close, as a crashed client would.
    func abort() async {
        task.cancel()
        _ = await task.result
    }
}

func openSotW(port: Int) throws -> ADSStream<DiscoveryRequest, DiscoveryResponse> {
    try ADSStream(port: port) { client, requests, mailbox in
        try await client.streamAggregatedResources { writer in
            for await request in requests { try await writer.write(request) }
        } onResponse: { response in
            for try await message in response.messages { await mailbox.put(message) }
        }
    }
}

func openDelta(port: Int, security: HTTP2ClientTransport.Posix.TransportSecurity = .plaintext) throws -> ADSStream<DeltaRequest, DeltaResponse> {
    try ADSStream(port: port, security: security) { client, requests, mailbox in
        try await client.deltaAggregatedResources { writer in
            for await request in requests { try await writer.write(request) }
        } onResponse: { response in
            for try await message in response.messages { await mailbox.put(message) }
        }
    }
}

// MARK: Fixtures

enum Fixture {
    static func cluster(_ name: String, edsService: String? = nil, timeoutSeconds: Int64 = 1) -> Envoy_Config_Cluster_V3_Cluster {
        var cluster = Envoy_Config_Cluster_V3_Cluster()
        cluster.name = name
        cluster.type = .eds
        cluster.edsClusterConfig.edsConfig.ads = Envoy_Config_Core_V3_AggregatedConfigSource()
        cluster.edsClusterConfig.serviceName = edsService ?? name
        cluster.connectTimeout.seconds = timeoutSeconds
        return cluster
    }

    static func endpoints(_ name: String, port: UInt32, host: String = "127.0.0.1") -> Envoy_Config_Endpoint_V3_ClusterLoadAssignment {
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

    static func route(_ name: String, cluster: String) -> Envoy_Config_Route_V3_RouteConfiguration {
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
    static func apiListener(_ name: String, rds: String? = nil, inlineCluster: String? = nil) throws -> Envoy_Config_Listener_V3_Listener {
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

    static func resource(_ name: String, _ message: some Message) throws -> XDSResource {
        try XDSResource(name: name, message: message)
    }

    static func clusters(_ names: [String], timeoutSeconds: Int64 = 1) throws -> [XDSResource] {
        try names.map { try resource($0, cluster($0, timeoutSeconds: timeoutSeconds)) }
    }
}

func sotwRequest(_ typeURL: String, names: [String] = [], node: String = "node-1", after response: DiscoveryResponse? = nil) -> DiscoveryRequest {
    var request = DiscoveryRequest()
    request.typeURL = typeURL
    request.resourceNames = names
    request.node.id = node
    if let response {
        request.versionInfo = response.versionInfo
        request.responseNonce = response.nonce
    }
    return request
}

func deltaRequest(_ typeURL: String, subscribe: [String] = [], unsubscribe: [String] = [], node: String = "node-1", nonce: String = "") -> DeltaRequest {
    var request = DeltaRequest()
    request.typeURL = typeURL
    request.resourceNamesSubscribe = subscribe
    request.resourceNamesUnsubscribe = unsubscribe
    request.node.id = node
    request.responseNonce = nonce
    return request
}

func clusterNames(_ response: DiscoveryResponse) throws -> [String] {
    try response.resources.map { try Envoy_Config_Cluster_V3_Cluster(unpackingAny: $0).name }
}
