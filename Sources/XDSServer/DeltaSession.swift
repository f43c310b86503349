import MeshProto
import SwiftProtobuf

/// The incremental (delta) protocol state of one ADS stream, free of I/O.
///
/// It tracks which version of each resource the client holds and sends only
/// what changed, plus `removed_resources` for subscribed names that left the
/// snapshot. A NACK reverts the client's versions to before the rejected
/// response and parks the rejected versions until the next snapshot.
struct DeltaSession: ADSSession {
    static let kind = "delta"

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
        /// Responses sent for this type on the stream (the `system_version_info`).
        var responses = 0
    }

    private var types: [String: TypeState] = [:]
    private var snapshot: XDSSnapshot?
    private var nonces = NonceSource()

    /// Handles one request; returns how it was classified and what to send.
    mutating func handle(_ request: Request) -> (RequestOutcome, [Response]) {
        let typeURL = request.typeURL
        let first = types[typeURL] == nil
        // Taken out while it changes, so the per-name version table is mutated in place, not copied.
        var state = types.removeValue(forKey: typeURL) ?? TypeState()
        if first {
            state.clientVersions = request.initialResourceVersions
        }
        state.subscription.applyDelta(
            first: first,
            subscribe: request.resourceNamesSubscribe,
            unsubscribe: request.resourceNamesUnsubscribe
        )
        if first || !request.resourceNamesUnsubscribe.isEmpty {
            // The client forgets what it no longer subscribes to; no removal is sent for those.
            state.clientVersions = state.clientVersions.filter { state.subscription.matches($0.key) }
        }

        // What may need sending: everything after a first request, a new wildcard or a NACK;
        // otherwise only newly subscribed names (an ACK changes nothing to send).
        var candidates: Set<String>? = Set(request.resourceNamesSubscribe)
        if first || request.resourceNamesSubscribe.contains(XDSTypeURL.wildcard) { candidates = nil }

        let outcome: RequestOutcome
        if request.responseNonce.isEmpty {
            outcome = .subscribe
        } else if request.responseNonce != state.lastNonce {
            outcome = .stale
        } else if request.hasErrorDetail {
            candidates = nil
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
        if candidates?.isEmpty == true { return (outcome, []) }
        if let response = respond(typeURL, candidates: candidates) { return (outcome, [response]) }
        return (outcome, [])
    }

    /// Installs a new snapshot; returns the responses in push order.
    /// When the new snapshot was derived from the one this stream holds, only the names it
    /// touched (and parked ones, which it releases) are looked at.
    mutating func update(_ snapshot: XDSSnapshot) -> [Response] {
        let touched = snapshot.derivation.flatMap { $0.baseID == self.snapshot?.id ? $0.touched : nil }
        self.snapshot = snapshot
        var responses: [Response] = []
        for typeURL in XDSTypeURL.sortedForPush(types.keys) {
            let parked = Set(types[typeURL]?.parked.keys ?? [:].keys)
            types[typeURL]?.parked = [:]
            let candidates = touched.map { ($0[typeURL] ?? []).union(parked) }
            if candidates?.isEmpty == true { continue }
            if let response = respond(typeURL, candidates: candidates) { responses.append(response) }
        }
        return responses
    }

    /// The response for `typeURL`, looking at `candidates` only, or at every name when nil.
    private mutating func respond(_ typeURL: String, candidates: Set<String>? = nil) -> Response? {
        // Taken out while it changes, so the per-name version table is mutated in place, not copied.
        guard let snapshot, var state = types.removeValue(forKey: typeURL) else { return nil }
        defer { types[typeURL] = state }
        let available = snapshot.resources(ofType: typeURL)
        let considered: [XDSResource] = candidates.map { names in names.compactMap { available[$0] } } ?? Array(available.values)
        let changed = considered
            .filter { state.subscription.matches($0.name) }
            .filter { state.clientVersions[$0.name] != $0.version && state.parked[$0.name] != $0.version }
            .sorted { $0.name < $1.name }
        let held: [String] = candidates.map { names in names.filter { state.clientVersions[$0] != nil } } ?? Array(state.clientVersions.keys)
        let removed = held
            .filter { available[$0] == nil }
            .sorted()
        if changed.isEmpty && removed.isEmpty { return nil }

        var response = Response()
        response.typeURL = typeURL
        response.nonce = nonces.make()
        response.resources = changed.map(\.deltaResource)
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
        // Informational only; a counter keeps a push to a 100,000-resource client O(changes).
        state.responses += 1
        response.systemVersionInfo = String(state.responses)
        state.lastNonce = response.nonce
        return response
    }
}
