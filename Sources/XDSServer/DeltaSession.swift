import MeshProto
import SwiftProtobuf

/// The incremental (delta) protocol state of one ADS stream, free of I/O.
///
/// It tracks which version of each resource the client holds and sends only
/// what changed, plus `removed_resources` for subscribed names that left the
/// snapshot. A NACK reverts the client's versions to before the rejected
/// response and parks the rejected versions until the next snapshot.
struct DeltaSession: Sendable {
    typealias Request = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
    typealias Response = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse

    private struct TypeState: Sendable {
        var subscription = Subscription()
        var clientVersions: [String: String] = [:]
        var lastNonce: String?
        /// Versions the client held before the last response, for the resources that response sent.
        var beforeLastResponse: [String: String?] = [:]
        /// Versions the client rejected; not resent until a new snapshot.
        var parked: [String: String] = [:]
    }

    private var types: [String: TypeState] = [:]
    private var snapshot: XDSSnapshot?
    private var nonces = NonceSource()

    /// Handles one request; returns how it was classified and what to send.
    mutating func handle(_ request: Request) -> (RequestOutcome, [Response]) {
        let typeURL = request.typeURL
        let first = types[typeURL] == nil
        var state = types[typeURL] ?? TypeState()
        if first {
            state.clientVersions = request.initialResourceVersions
        }
        state.subscription.applyDelta(
            first: first,
            subscribe: request.resourceNamesSubscribe,
            unsubscribe: request.resourceNamesUnsubscribe
        )
        // The client forgets what it no longer subscribes to; no removal is sent for those.
        state.clientVersions = state.clientVersions.filter { state.subscription.matches($0.key) }

        let outcome: RequestOutcome
        if request.responseNonce.isEmpty {
            outcome = .subscribe
        } else if request.responseNonce != state.lastNonce {
            outcome = .stale
        } else if request.hasErrorDetail {
            outcome = .nack(message: request.errorDetail.message)
            for (name, previous) in state.beforeLastResponse {
                if let sent = state.clientVersions[name] { state.parked[name] = sent }
                state.clientVersions[name] = previous
            }
            state.beforeLastResponse = [:]
        } else {
            outcome = .ack
            state.beforeLastResponse = [:]
        }
        types[typeURL] = state
        if let response = respond(typeURL) { return (outcome, [response]) }
        return (outcome, [])
    }

    /// Installs a new snapshot; returns the responses in push order.
    mutating func update(_ snapshot: XDSSnapshot) -> [Response] {
        self.snapshot = snapshot
        var responses: [Response] = []
        for typeURL in XDSTypeURL.sortedForPush(types.keys) {
            types[typeURL]?.parked = [:]
            if let response = respond(typeURL) { responses.append(response) }
        }
        return responses
    }

    private mutating func respond(_ typeURL: String) -> Response? {
        guard let snapshot, var state = types[typeURL] else { return nil }
        let available = snapshot.resources(ofType: typeURL)
        let changed = available.values
            .filter { state.subscription.matches($0.name) }
            .filter { state.clientVersions[$0.name] != $0.version && state.parked[$0.name] != $0.version }
            .sorted { $0.name < $1.name }
        let removed = state.clientVersions.keys
            .filter { available[$0] == nil }
            .sorted()
        if changed.isEmpty && removed.isEmpty { return nil }

        var response = Response()
        response.typeURL = typeURL
        response.nonce = nonces.make()
        response.resources = changed.map { resource in
            var wire = Envoy_Service_Discovery_V3_Resource()
            wire.name = resource.name
            wire.version = resource.version
            wire.resource = resource.any
            return wire
        }
        response.removedResources = removed
        state.beforeLastResponse = [:]
        for resource in changed {
            state.beforeLastResponse[resource.name] = .some(state.clientVersions[resource.name])
            state.clientVersions[resource.name] = resource.version
        }
        for name in removed {
            // A removal is final: a NACK does not bring a removed name back.
            state.clientVersions[name] = nil
        }
        let held = available.values.filter { state.clientVersions[$0.name] != nil }
        response.systemVersionInfo = XDSSnapshot.version(of: held)
        state.lastNonce = response.nonce
        types[typeURL] = state
        return response
    }
}
