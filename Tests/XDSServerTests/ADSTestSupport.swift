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
