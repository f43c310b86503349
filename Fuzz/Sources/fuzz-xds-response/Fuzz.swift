import FuzzSupport
import MeshIdentity
import MeshProto
import SwiftProtobuf
@testable import XDSClient

// xDS responses as ztunnel's ADS client receives them from a control plane:
// protobuf DiscoveryResponse / DeltaDiscoveryResponse bytes, decoded, then
// every resource decoded and validated by the client's ResponseDecoder with
// the Istio Address and Authorization types WorkloadStoreSync subscribes
// (MeshAddress / Authorization conversion), applied to the ADS protocol state
// (ACK or NACK), and each accepted change applied to a WorkloadStore as
// WorkloadStoreSync does, which is then queried and asked to authorize.
//
// ResponseDecoder and ADSProtocolState are internal: `@testable import XDSClient`.
//
// Input: byte 0 bit 0 picks the variant (0 state of the world, 1 delta); then
// up to 8 responses, each a 2-byte big-endian length and that many bytes (the
// last one may be short), fed in order to one client state and one store.
//
// Invariants: a response with an undecodable or invalid resource is NACKed
// (error_detail set) and changes nothing; an accepted one is ACKed; after each
// response the store holds exactly the addresses and policies the client holds.
//
// That last one found a resource named other than its value's key (a workload
// Address named other than its uid) being added to the store under the key and
// never removed by name (Fuzz/Regressions/xds-response; fixed in 23a3a57, the
// client now NACKs such a resource).

private let addressType = ErasedResourceType(WorkloadStoreSync.addressType)
private let policyType = ErasedResourceType(WorkloadStoreSync.policyType)
private let source = try? SPIFFEID("spiffe://cluster.local/ns/default/sa/client")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var reader = FuzzReader(Fuzz.bytes(data, size))
    let delta = reader.byte() & 1 == 1
    let now = ContinuousClock.now
    var state = ADSProtocolState(variant: delta ? .delta : .stateOfTheWorld, node: Envoy_Config_Core_V3_Node(),
                                 legacyWildcard: false, doesNotExistTimeout: .seconds(15))
    for type in [addressType, policyType] {
        state.register(type, replace: false)
        _ = state.subscribe(type.typeURL, wildcard: true, names: [], now: now)
    }
    _ = state.streamStarted(now: now)
    guard let store = try? WorkloadStore() else { fatalError("empty store") }

    var count = 0
    while !reader.isEmpty, count < 8 {
        count += 1
        let length = Int(reader.uint16())
        let message = Array(reader.take(length))
        if delta {
            guard let response = try? Envoy_Service_Discovery_V3_DeltaDiscoveryResponse(serializedBytes: message) else { continue }
            let type = state.registeredType(response.typeURL)
            let decoded = ResponseDecoder.decode(response, as: type)
            let before = state.currentState(response.typeURL).map { Set($0.entries.keys) }
            let (request, change) = state.handle(response, decoded: decoded, now: now)
            guard case .delta(let answer) = request else { fatalError("a delta response answered with a SotW request") }
            check(decoded: decoded, nacked: answer.hasErrorDetail, change: change, before: before, after: state.currentState(response.typeURL).map { Set($0.entries.keys) })
            if let change { apply(change, to: store) }
        } else {
            guard let response = try? Envoy_Service_Discovery_V3_DiscoveryResponse(serializedBytes: message) else { continue }
            let type = state.registeredType(response.typeURL)
            let decoded = ResponseDecoder.decode(response, as: type)
            let before = state.currentState(response.typeURL).map { Set($0.entries.keys) }
            let (request, change) = state.handle(response, decoded: decoded, now: now)
            guard case .sotw(let answer) = request else { fatalError("a SotW response answered with a delta request") }
            check(decoded: decoded, nacked: answer.hasErrorDetail, change: change, before: before, after: state.currentState(response.typeURL).map { Set($0.entries.keys) })
            if let change { apply(change, to: store) }
        }
        let addresses = state.currentState(addressType.typeURL)?.entries.count ?? 0
        let policies = state.currentState(policyType.typeURL)?.entries.count ?? 0
        let counts = store.counts
        Fuzz.check(counts.workloads + counts.services == addresses,
                   "the client holds \(addresses) addresses, the store \(counts.workloads) workloads and \(counts.services) services")
        Fuzz.check(counts.policies == policies, "the client holds \(policies) authorizations, the store \(counts.policies)")
    }
    query(store)
    return 0
}

private func check(decoded: Result<ADSProtocolState.Decoded, XDSClientError>, nacked: Bool, change: TypeChange?, before: Set<String>?, after: Set<String>?) {
    switch decoded {
    case .failure(let error):
        Fuzz.check(nacked, "an undecodable response (\(error)) was ACKed")
        Fuzz.check(change == nil, "a NACKed response changed the state")
        Fuzz.check(before == after, "a NACKed response changed the cached resources")
    case .success:
        Fuzz.check(!nacked, "a decodable response was NACKed")
    }
}

/// What WorkloadStoreSync.apply(addresses:) and apply(policies:) do with an update.
private func apply(_ change: TypeChange, to store: WorkloadStore) {
    if change.typeURL == addressType.typeURL {
        let update = XDSWatchUpdate<MeshAddress>(change)
        var storeChange = WorkloadStoreChange(removedAddresses: Array(update.removed))
        for name in update.updated {
            switch update[name] {
            case .workload(let workload): storeChange.upsertedWorkloads.append(workload)
            case .service(let service): storeChange.upsertedServices.append(service)
            case nil: break
            }
        }
        store.update(storeChange)
    } else if change.typeURL == policyType.typeURL {
        let update = XDSWatchUpdate<Authorization>(change)
        var storeChange = WorkloadStoreChange(removedPolicies: Array(update.removed))
        storeChange.upsertedPolicies = update.updated.compactMap { update[$0] }
        store.update(storeChange)
    }
}

/// The lookups the data path makes, and an L4 authorization of a connection to each workload.
private func query(_ store: WorkloadStore) {
    let snapshot = store.snapshot
    for workload in snapshot.workloads.prefix(16) {
        Fuzz.check(store.workload(uid: workload.uid) != nil, "workload \(workload.uid) is in the snapshot but not found by uid")
        for ip in workload.workloadIPs.prefix(4) { _ = store.workload(address: ip, network: workload.network) }
        _ = store.workloads(onNode: workload.node)
        _ = try? workload.identity()
        let ports: [UInt16] = [8080, 80] + workload.services.values.flatMap { Array($0.values) }
        for port in ports.prefix(4) {
            _ = store.authorize(L4Connection(source: source, destination: workload, destinationPort: port,
                                             sourceAddress: "10.244.0.9", destinationAddress: workload.workloadIPs.first))
            _ = store.authorize(L4Connection(source: nil, destination: workload, destinationPort: port))
        }
    }
    for service in snapshot.services.prefix(16) {
        _ = store.service(hostname: service.hostname)
        for vip in service.vips.prefix(4) { _ = store.service(vip: vip.address, network: vip.network) }
        _ = store.endpoints(of: service)
    }
}
