import MeshProto
import SwiftProtobuf

/// The state-of-the-world protocol state of one ADS stream, free of I/O.
///
/// It turns requests and snapshot changes into the responses to send:
/// full sets per type, versioned by content, nonces checked, NACKed versions
/// parked until the next snapshot.
struct SotWSession: ADSSession {
    static let kind = "sotw"

    typealias Request = Envoy_Service_Discovery_V3_DiscoveryRequest
    typealias Response = Envoy_Service_Discovery_V3_DiscoveryResponse

    private struct TypeState: Sendable {
        var subscription: Subscription
        var lastSentVersion: String?
        var lastNonce: String?
        var parkedVersion: String?
    }

    private var types: [String: TypeState] = [:]
    private var snapshot: XDSSnapshot?
    private var nonces = NonceSource()

    /// Handles one request; returns how it was classified and what to send.
    mutating func handle(_ request: Request) -> (RequestOutcome, [Response]) {
        let typeURL = request.typeURL
        let existing = types[typeURL]
        if !request.responseNonce.isEmpty, request.responseNonce != existing?.lastNonce {
            // A reply to an older response; the client will answer the newest one too.
            return (.stale, [])
        }
        var state = existing ?? TypeState(subscription: Subscription())
        state.subscription = Subscription.sotw(previous: existing?.subscription, requested: request.resourceNames)
        let outcome: RequestOutcome
        if request.hasErrorDetail {
            outcome = .nack(message: request.errorDetail.message)
            state.parkedVersion = state.lastSentVersion
        } else if request.responseNonce.isEmpty {
            outcome = .subscribe
            if existing == nil, !request.versionInfo.isEmpty {
                // Reconnect: the client tells us what it already has.
                state.lastSentVersion = request.versionInfo
            }
        } else {
            outcome = .ack
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
            types[typeURL]?.parkedVersion = nil
            if let response = respond(typeURL) { responses.append(response) }
        }
        return responses
    }

    private mutating func respond(_ typeURL: String) -> Response? {
        guard let snapshot, var state = types[typeURL] else { return nil }
        let set = snapshot.resources(ofType: typeURL).values
            .filter { state.subscription.matches($0.name) }
            .sorted { $0.name < $1.name }
        let version = XDSSnapshot.version(of: set)
        if version == state.lastSentVersion || version == state.parkedVersion { return nil }
        var response = Response()
        response.typeURL = typeURL
        response.versionInfo = version
        response.resources = set.map(\.any)
        response.nonce = nonces.make()
        state.lastSentVersion = version
        state.lastNonce = response.nonce
        types[typeURL] = state
        return response
    }
}
