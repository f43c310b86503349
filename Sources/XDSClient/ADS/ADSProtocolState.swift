import MeshProto
import SwiftProtobuf

/// The client side of the ADS protocol for every subscribed type, free of I/O:
/// subscriptions, cached resources, accepted versions and nonces. It turns
/// subscription changes, stream starts and responses into the requests to send
/// and the changes to report to watches.
///
/// Both variants share it: state of the world (full name lists, `version_info`
/// echoed) and delta (subscribe/unsubscribe lists, per-resource versions,
/// `initial_resource_versions` on a new stream).
struct ADSProtocolState: Sendable {
    typealias SotWRequest = Envoy_Service_Discovery_V3_DiscoveryRequest
    typealias SotWResponse = Envoy_Service_Discovery_V3_DiscoveryResponse
    typealias DeltaRequest = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
    typealias DeltaResponse = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse

    /// A request for whichever variant the client speaks.
    enum Request: Sendable {
        case sotw(SotWRequest)
        case delta(DeltaRequest)
    }

    /// A response decoded outside the lock: per resource its name, server version (delta) and value.
    struct Decoded: Sendable {
        var resources: [(name: String, version: String?, value: any Sendable)]
        var removed: [String] = []
    }

    struct TypeState: Sendable {
        var resourceType: ErasedResourceType
        var wildcard = false
        var names: Set<String> = []
        var entries: [String: CachedResource] = [:]
        /// SotW: the `version_info` of the last accepted response; delta: its `system_version_info`.
        var acceptedVersion = ""
        /// The nonce of the last response on the current stream.
        var nonce = ""
        /// Whether this type has been requested on the current stream.
        var requested = false
        /// Whether any response for this type was accepted (watches then get an initial state).
        var received = false
        /// Named subscriptions still waiting for their resource, with their does-not-exist deadline.
        var awaiting: [String: ContinuousClock.Instant] = [:]

        var isActive: Bool { wildcard || !names.isEmpty }
        func matches(_ name: String) -> Bool { wildcard || names.contains(name) }
    }

    let variant: ADSClient.Variant
    let node: Envoy_Config_Core_V3_Node
    let legacyWildcard: Bool
    let doesNotExistTimeout: Duration
    private(set) var types: [String: TypeState] = [:]
    private(set) var onStream = false
    private var nodeSent = false

    init(variant: ADSClient.Variant, node: Envoy_Config_Core_V3_Node, legacyWildcard: Bool, doesNotExistTimeout: Duration) {
        self.variant = variant
        self.node = node
        self.legacyWildcard = legacyWildcard
        self.doesNotExistTimeout = doesNotExistTimeout
    }

    // MARK: Subscriptions

    /// Makes `type` known (its decoder and validation), replacing an earlier registration when `replace`.
    mutating func register(_ type: ErasedResourceType, replace: Bool) {
        if types[type.typeURL] == nil {
            types[type.typeURL] = TypeState(resourceType: type)
        } else if replace {
            types[type.typeURL]?.resourceType = type
        }
    }

    func registeredType(_ typeURL: String) -> ErasedResourceType? { types[typeURL]?.resourceType }

    /// Adds the wildcard and/or names; returns the request to send when a stream is open.
    mutating func subscribe(_ typeURL: String, wildcard: Bool, names: Set<String>, now: ContinuousClock.Instant) -> Request? {
        guard var state = types[typeURL] else { return nil }
        let added = names.subtracting(state.names)
        let addsWildcard = wildcard && !state.wildcard
        guard addsWildcard || !added.isEmpty else { return nil }
        state.wildcard = state.wildcard || wildcard
        state.names.formUnion(added)
        types[typeURL] = state
        guard onStream else { return nil }
        arm(typeURL, names: added, now: now)
        if !(types[typeURL]?.requested ?? false) { return initialRequest(typeURL) }
        switch variant {
        case .stateOfTheWorld:
            return .sotw(sotwRequest(typeURL, version: state.acceptedVersion, nonce: state.nonce))
        case .delta:
            var request = deltaRequest(typeURL)
            request.resourceNamesSubscribe = (addsWildcard ? [XDSWildcard] : []) + added.sorted()
            return .delta(request)
        }
    }

    /// Removes the wildcard and/or names and drops the resources no longer subscribed;
    /// returns the request to send and the change for watches.
    mutating func unsubscribe(_ typeURL: String, wildcard: Bool, names: Set<String>) -> (Request?, TypeChange?) {
        guard var state = types[typeURL] else { return (nil, nil) }
        let dropped = names.intersection(state.names)
        let dropsWildcard = wildcard && state.wildcard
        guard dropsWildcard || !dropped.isEmpty else { return (nil, nil) }
        if dropsWildcard { state.wildcard = false }
        state.names.subtract(dropped)
        for name in dropped { state.awaiting[name] = nil }
        var change = TypeChange(typeURL: typeURL, version: state.acceptedVersion, entries: [:])
        for name in state.entries.keys where !state.matches(name) {
            state.entries[name] = nil
            change.removed.insert(name)
        }
        change.entries = state.entries
        types[typeURL] = state
        let report = change.isEmpty ? nil : change
        guard onStream, state.requested else { return (nil, report) }
        switch variant {
        case .stateOfTheWorld:
            // An empty list after the first request means "nothing" (only a first request is a legacy wildcard).
            return (.sotw(sotwRequest(typeURL, version: state.acceptedVersion, nonce: state.nonce)), report)
        case .delta:
            var request = deltaRequest(typeURL)
            request.resourceNamesUnsubscribe = (dropsWildcard ? [XDSWildcard] : []) + dropped.sorted()
            return (.delta(request), report)
        }
    }

    // MARK: Stream lifecycle

    /// A new stream: the first request of every active type, with what the client already has.
    mutating func streamStarted(now: ContinuousClock.Instant) -> [Request] {
        onStream = true
        nodeSent = false
        var requests: [Request] = []
        for typeURL in pushOrder(types.keys) where types[typeURL]?.isActive == true {
            let missing = types[typeURL].map { state in state.names.filter { state.entries[$0] == nil } } ?? []
            arm(typeURL, names: Set(missing), now: now)
            requests.append(initialRequest(typeURL))
        }
        return requests
    }

    /// The stream ended: nonces are void and does-not-exist timers stop; resources stay.
    mutating func streamEnded() {
        onStream = false
        for typeURL in types.keys {
            types[typeURL]?.nonce = ""
            types[typeURL]?.requested = false
            types[typeURL]?.awaiting = [:]
        }
    }

    private mutating func initialRequest(_ typeURL: String) -> Request {
        types[typeURL]?.requested = true
        let state = types[typeURL]!
        switch variant {
        case .stateOfTheWorld:
            return .sotw(sotwRequest(typeURL, version: state.acceptedVersion, nonce: ""))
        case .delta:
            var request = deltaRequest(typeURL)
            if !(state.wildcard && state.names.isEmpty && legacyWildcard) {
                request.resourceNamesSubscribe = (state.wildcard ? [XDSWildcard] : []) + state.names.sorted()
            }
            request.initialResourceVersions = state.entries.mapValues(\.version)
            return .delta(request)
        }
    }

    // MARK: Responses

    /// Applies a state-of-the-world response (or NACKs it); returns the ACK/NACK and the change for watches.
    mutating func handle(_ response: SotWResponse, decoded: Result<Decoded, XDSClientError>, now: ContinuousClock.Instant) -> (Request, TypeChange?) {
        let typeURL = response.typeURL
        guard var state = types[typeURL] else {
            return (.sotw(nack(typeURL, version: "", nonce: response.nonce, .unexpectedType(typeURL: typeURL))), nil)
        }
        state.nonce = response.nonce
        types[typeURL] = state
        let batch: Decoded
        switch decoded {
        case .failure(let error):
            return (.sotw(nack(typeURL, version: state.acceptedVersion, nonce: response.nonce, error)), nil)
        case .success(let value):
            batch = value
        }
        var change = TypeChange(typeURL: typeURL, version: response.versionInfo, entries: [:])
        var next = state.entries
        let complete = state.resourceType.stateOfTheWorldIsComplete || (state.wildcard && state.names.isEmpty)
        var present = Set<String>()
        for resource in batch.resources where state.matches(resource.name) {
            present.insert(resource.name)
            if let old = next[resource.name], let cached = old.value, state.resourceType.equal(cached, resource.value) {
                next[resource.name]?.version = response.versionInfo
                continue
            }
            next[resource.name] = state.resourceType.cache(version: response.versionInfo, resource.value)
            change.updated.insert(resource.name)
            change.values[resource.name] = resource.value
        }
        if complete {
            for name in state.entries.keys where !present.contains(name) {
                next[name] = nil
                change.removed.insert(name)
            }
            // A complete response that leaves out a named resource says it does not exist.
            for name in state.names where !present.contains(name) && state.entries[name] == nil {
                change.doesNotExist.insert(name)
                state.awaiting[name] = nil
            }
        }
        for name in present { state.awaiting[name] = nil }
        state.entries = next
        state.acceptedVersion = response.versionInfo
        let first = !state.received
        state.received = true
        change.entries = next
        types[typeURL] = state
        let ack = sotwRequest(typeURL, version: response.versionInfo, nonce: response.nonce)
        return (.sotw(ack), change.isEmpty && !first ? nil : change)
    }

    /// Applies a delta response (or NACKs it); returns the ACK/NACK and the change for watches.
    mutating func handle(_ response: DeltaResponse, decoded: Result<Decoded, XDSClientError>, now: ContinuousClock.Instant) -> (Request, TypeChange?) {
        let typeURL = response.typeURL
        // Taken out while it changes, so its (possibly 100,000-entry) cache is mutated in place, not copied.
        guard var state = types.removeValue(forKey: typeURL) else {
            return (.delta(deltaNack(typeURL, nonce: response.nonce, .unexpectedType(typeURL: typeURL))), nil)
        }
        defer { types[typeURL] = state }
        state.nonce = response.nonce
        let batch: Decoded
        switch decoded {
        case .failure(let error):
            return (.delta(deltaNack(typeURL, nonce: response.nonce, error)), nil)
        case .success(let value):
            batch = value
        }
        var change = TypeChange(typeURL: typeURL, version: response.systemVersionInfo, entries: [:])
        for resource in batch.resources where state.matches(resource.name) {
            let version = resource.version ?? ""
            state.awaiting[resource.name] = nil
            if let old = state.entries[resource.name] {
                // The same server version is the same resource; otherwise compare content when it is kept.
                let same = (!version.isEmpty && old.version == version) || old.value.map { state.resourceType.equal($0, resource.value) } == true
                if same {
                    state.entries[resource.name]?.version = version
                    continue
                }
            }
            state.entries[resource.name] = state.resourceType.cache(version: version, resource.value)
            change.updated.insert(resource.name)
            change.values[resource.name] = resource.value
        }
        for name in batch.removed {
            if state.entries.removeValue(forKey: name) != nil {
                change.removed.insert(name)
            } else if state.names.contains(name) {
                change.doesNotExist.insert(name)
            }
            state.awaiting[name] = nil
        }
        state.acceptedVersion = response.systemVersionInfo
        let first = !state.received
        state.received = true
        change.entries = state.entries
        var ack = deltaRequest(typeURL)
        ack.responseNonce = response.nonce
        return (.delta(ack), change.isEmpty && !first ? nil : change)
    }

    // MARK: Does-not-exist

    /// Reports the named subscriptions whose does-not-exist timeout has passed without a resource.
    mutating func expire(now: ContinuousClock.Instant) -> [TypeChange] {
        var changes: [TypeChange] = []
        for (typeURL, state) in types where !state.awaiting.isEmpty {
            let due = state.awaiting.filter { $0.value <= now }.map(\.key)
            guard !due.isEmpty else { continue }
            for name in due { types[typeURL]?.awaiting[name] = nil }
            changes.append(TypeChange(typeURL: typeURL, version: state.acceptedVersion, doesNotExist: Set(due), entries: state.entries))
        }
        return changes
    }

    /// The current state of a type for a new watch, if any response was accepted.
    func currentState(_ typeURL: String) -> TypeChange? {
        guard let state = types[typeURL], state.received else { return nil }
        return TypeChange(typeURL: typeURL, version: state.acceptedVersion, updated: Set(state.entries.keys), entries: state.entries)
    }

    // MARK: Request building

    private mutating func arm(_ typeURL: String, names: Set<String>, now: ContinuousClock.Instant) {
        for name in names where types[typeURL]?.entries[name] == nil {
            types[typeURL]?.awaiting[name] = now.advanced(by: doesNotExistTimeout)
        }
    }

    private mutating func takeNode() -> Envoy_Config_Core_V3_Node? {
        if nodeSent { return nil }
        nodeSent = true
        return node
    }

    private mutating func sotwRequest(_ typeURL: String, version: String, nonce: String) -> SotWRequest {
        let state = types[typeURL]
        var request = SotWRequest()
        request.typeURL = typeURL
        request.versionInfo = version
        request.responseNonce = nonce
        if let state {
            if state.wildcard && state.names.isEmpty {
                request.resourceNames = legacyWildcard ? [] : [XDSWildcard]
            } else {
                request.resourceNames = (state.wildcard ? [XDSWildcard] : []) + state.names.sorted()
            }
        }
        if let node = takeNode() { request.node = node }
        return request
    }

    private mutating func nack(_ typeURL: String, version: String, nonce: String, _ error: XDSClientError) -> SotWRequest {
        var request = sotwRequest(typeURL, version: version, nonce: nonce)
        request.errorDetail = Self.status(error)
        return request
    }

    private mutating func deltaRequest(_ typeURL: String) -> DeltaRequest {
        var request = DeltaRequest()
        request.typeURL = typeURL
        if let node = takeNode() { request.node = node }
        return request
    }

    private mutating func deltaNack(_ typeURL: String, nonce: String, _ error: XDSClientError) -> DeltaRequest {
        var request = deltaRequest(typeURL)
        request.responseNonce = nonce
        request.errorDetail = Self.status(error)
        return request
    }

    /// `google.rpc.Status` for a NACK: INVALID_ARGUMENT with the error's text.
    static func status(_ error: XDSClientError) -> Google_Rpc_Status {
        var status = Google_Rpc_Status()
        status.code = 3
        status.message = error.description
        return status
    }

    /// Envoy's make-before-break order (CDS, EDS, LDS, RDS), then the other types by name.
    private func pushOrder(_ typeURLs: some Sequence<String>) -> [String] {
        let order = [
            "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
            "type.googleapis.com/envoy.config.listener.v3.Listener",
            "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        ]
        return typeURLs.sorted { lhs, rhs in
            let l = order.firstIndex(of: lhs) ?? order.count
            let r = order.firstIndex(of: rhs) ?? order.count
            return l == r ? lhs < rhs : l < r
        }
    }
}

/// The subscription name meaning "every resource of this type".
let XDSWildcard = "*"
