import GRPCCore
import Logging
import MeshProto

/// The gRPC `envoy.service.discovery.v3.AggregatedDiscoveryService`, serving
/// both state-of-the-world and delta streams from an ``XDSSnapshotCache``.
struct ADSService: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.SimpleServiceProtocol {
    let cache: XDSSnapshotCache
    let counters: XDSServerCounters
    let registry: StreamRegistry
    let connections: XDSConnectionTable
    let observer: (any XDSServerObserver)?
    let logger: Logger

    func streamAggregatedResources(
        request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DiscoveryRequest, any Error>,
        response: RPCWriter<Envoy_Service_Discovery_V3_DiscoveryResponse>,
        context: ServerContext
    ) async throws {
        try await loop.run(SotWSession(), requests: request, write: { try await response.write($0) })
    }

    func deltaAggregatedResources(
        request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest, any Error>,
        response: RPCWriter<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse>,
        context: ServerContext
    ) async throws {
        try await loop.run(DeltaSession(), requests: request, write: { try await response.write($0) })
    }

    private var loop: ADSStreamLoop {
        ADSStreamLoop(cache: cache, counters: counters, registry: registry, connections: connections, observer: observer, logger: logger)
    }
}
