import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import MeshIdentity
import MeshProto
import NIOConcurrencyHelpers
import Synchronization

/// An Aggregated Discovery Service client over gRPC (grpc-swift 2), speaking
/// state of the world or delta xDS to a control plane: one, or several replicas
/// serving the same state, to fail over between.
///
/// Subscribe per type (wildcard or names, at any time), watch typed updates,
/// and ``run()`` it: it connects, re-subscribes on every new stream (delta
/// sends `initial_resource_versions`, state of the world the last accepted
/// version), ACKs what it accepts and NACKs with `error_detail` what a decoder
/// or validation hook rejects, without applying any of it. When the stream
/// breaks it reconnects with ``ReconnectBackoff``, trying the next of the
/// configured servers first; meanwhile the last good state keeps serving.
///
/// ```swift
/// let client = ADSClient(configuration: .init(
///     host: "127.0.0.1", port: 15010, variant: .delta,
///     node: XDSNode.ztunnel(podName: "ztunnel-x7k2", namespace: "istio-system", podIP: "10.0.0.7", nodeName: "node-a")))
/// client.subscribe(.cluster, to: .wildcard)
/// async let running: Void = client.run()
/// for await update in client.watch(.cluster) {
///     print(update.version, update.updated, update.removed)
/// }
/// ```
public final class ADSClient: Sendable {
    /// The xDS protocol variant.
    public enum Variant: String, Sendable, Hashable {
        /// `StreamAggregatedResources`: full name lists and `version_info` per type.
        case stateOfTheWorld = "sotw"
        /// `DeltaAggregatedResources`: incremental subscriptions and per-resource versions.
        case delta
    }

    /// One control-plane address (istiod serves xDS on 15010 plaintext, 15012 mTLS).
    public typealias Server = ServerAddress

    /// Where the control plane is and how to talk to it.
    public struct Configuration: Sendable {
        /// The control plane's replicas, in order of preference (never empty). When a stream
        /// ends or cannot be opened, the client tries the next one; the backoff grows only
        /// after every server has failed once.
        public var servers: [Server]
        /// The first server's host.
        public var host: String {
            get { servers[0].host }
            set { servers[0].host = newValue }
        }
        /// The first server's port.
        public var port: Int {
            get { servers[0].port }
            set { servers[0].port = newValue }
        }
        /// State of the world or delta (delta by default, as ztunnel uses).
        public var variant: Variant
        /// The node sent on the first request of every stream.
        public var node: Envoy_Config_Core_V3_Node
        /// Called for every connection attempt, so an mTLS transport built from an
        /// `SVIDSource` (IdentityServices' `SPIFFEGRPCSecurity.client`) presents the
        /// newest SVID after rotation. Plaintext by default.
        public var transportSecurity: @Sendable () throws -> HTTP2ClientTransport.Posix.TransportSecurity
        /// Delays between reconnect attempts (10 ms to 15 s with jitter by default).
        public var backoff: ReconnectBackoff
        /// How long a named subscription may go unanswered before watches hear it does not exist (15 s).
        public var doesNotExistTimeout: Duration
        /// Send a wildcard-only subscription as the legacy empty name list instead of `*`.
        public var legacyWildcard: Bool
        /// How long a connection attempt may take to open the stream before it is abandoned and retried (10 s).
        public var connectTimeout: Duration
        /// The largest response message accepted (64 MiB by default; a 100,000-workload push is ~20 MiB).
        public var maxResponseBytes: Int

        /// Creates a configuration for one control plane.
        public init(
            host: String,
            port: Int,
            variant: Variant = .delta,
            node: Envoy_Config_Core_V3_Node,
            transportSecurity: @escaping @Sendable () throws -> HTTP2ClientTransport.Posix.TransportSecurity = { .plaintext },
            backoff: ReconnectBackoff = ReconnectBackoff(),
            doesNotExistTimeout: Duration = .seconds(15),
            legacyWildcard: Bool = false,
            connectTimeout: Duration = .seconds(10),
            maxResponseBytes: Int = 64 << 20
        ) {
            self.init(servers: [Server(host: host, port: port)], variant: variant, node: node, transportSecurity: transportSecurity,
                      backoff: backoff, doesNotExistTimeout: doesNotExistTimeout, legacyWildcard: legacyWildcard,
                      connectTimeout: connectTimeout, maxResponseBytes: maxResponseBytes)
        }

        /// Creates a configuration for control-plane replicas serving the same state (`servers` must not be empty).
        public init(
            servers: [Server],
            variant: Variant = .delta,
            node: Envoy_Config_Core_V3_Node,
            transportSecurity: @escaping @Sendable () throws -> HTTP2ClientTransport.Posix.TransportSecurity = { .plaintext },
            backoff: ReconnectBackoff = ReconnectBackoff(),
            doesNotExistTimeout: Duration = .seconds(15),
            legacyWildcard: Bool = false,
            connectTimeout: Duration = .seconds(10),
            maxResponseBytes: Int = 64 << 20
        ) {
            precondition(!servers.isEmpty, "ADSClient.Configuration needs at least one server")
            self.servers = servers
            self.variant = variant
            self.node = node
            self.transportSecurity = transportSecurity
            self.backoff = backoff
            self.doesNotExistTimeout = doesNotExistTimeout
            self.legacyWildcard = legacyWildcard
            self.connectTimeout = connectTimeout
            self.maxResponseBytes = maxResponseBytes
        }
    }

    /// What the client has done so far.
    public struct Counters: Sendable, Hashable {
        /// Streams opened (the first one and every reconnect).
        public var streams = 0
        /// Responses received.
        public var responses = 0
        /// Responses accepted and ACKed.
        public var acks = 0
        /// Responses rejected and NACKed.
        public var nacks = 0
        /// Whether a stream is open now.
        public var connected = false
        /// The server of the open stream, or of the last one.
        public var server: Server?
    }

    private struct Shared: Sendable {
        var state: ADSProtocolState
        var watchers: [String: [Int: Watcher]] = [:]
        var nextWatcher = 0
        var outgoing: AsyncStream<ADSProtocolState.Request>.Continuation?
        var counters = Counters()
        var stopped = false

        mutating func send(_ request: ADSProtocolState.Request?) {
            if let request { outgoing?.yield(request) }
        }

        func deliver(_ change: TypeChange?) {
            guard let change, let watchers = watchers[change.typeURL] else { return }
            for watcher in watchers.values { watcher.deliver(change) }
        }

        /// Marks the client stopped and hands back the watches to finish (outside the lock).
        mutating func stop() -> [Watcher] {
            stopped = true
            outgoing?.finish()
            defer { watchers = [:] }
            return watchers.values.flatMap(\.values)
        }
    }

    struct Watcher: Sendable {
        let deliver: @Sendable (TypeChange) -> Void
        let finish: @Sendable () -> Void
    }

    /// The configuration the client was created with.
    public let configuration: Configuration
    private let shared: NIOLockedValueBox<Shared>
    private let stopSignal: AsyncStream<Void>.Continuation
    private let stopped: AsyncStream<Void>
    private let logger: Logger

    /// Creates a client; nothing connects until ``run()``.
    public init(configuration: Configuration, logger: Logger = Logger(label: "swift-mesh.xds-client")) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "xds.servers"] = "\(configuration.servers.map(\.description).joined(separator: ","))"
        logger[metadataKey: "xds.variant"] = "\(configuration.variant.rawValue)"
        self.logger = logger
        self.shared = NIOLockedValueBox(Shared(state: ADSProtocolState(
            variant: configuration.variant,
            node: configuration.node,
            legacyWildcard: configuration.legacyWildcard,
            doesNotExistTimeout: configuration.doesNotExistTimeout
        )))
        (self.stopped, self.stopSignal) = AsyncStream<Void>.makeStream()
    }

    // MARK: Subscriptions and watches

    /// Subscribes to resources of `type` (adding to what is already subscribed).
    /// The type's decoder and validation hook replace any earlier registration.
    public func subscribe<Value>(_ type: XDSResourceType<Value>, to subscription: XDSSubscription) {
        shared.withLockedValue { shared in
            shared.state.register(ErasedResourceType(type), replace: true)
            shared.send(shared.state.subscribe(type.typeURL, wildcard: subscription.wildcard, names: subscription.names, now: .now))
        }
    }

    /// Unsubscribes from resources of `type`; watches see the resources no longer subscribed as removed.
    public func unsubscribe<Value>(_ type: XDSResourceType<Value>, from subscription: XDSSubscription) {
        shared.withLockedValue { shared in
            let (request, change) = shared.state.unsubscribe(type.typeURL, wildcard: subscription.wildcard, names: subscription.names)
            shared.send(request)
            shared.deliver(change)
        }
    }

    /// Consistent updates of `type`: the current state first (when any response
    /// was accepted already), then one update per accepted response that changed
    /// something, per unsubscription and per does-not-exist timeout.
    /// The sequence ends when the client is shut down.
    public func watch<Value>(_ type: XDSResourceType<Value>) -> AsyncStream<XDSWatchUpdate<Value>> {
        let (stream, continuation) = AsyncStream<XDSWatchUpdate<Value>>.makeStream()
        let id: Int? = shared.withLockedValue { shared in
            guard !shared.stopped else { return nil }
            shared.state.register(ErasedResourceType(type), replace: false)
            let id = shared.nextWatcher
            shared.nextWatcher += 1
            shared.watchers[type.typeURL, default: [:]][id] = Watcher(
                deliver: { change in continuation.yield(XDSWatchUpdate(change)) },
                finish: { continuation.finish() }
            )
            if let current = shared.state.currentState(type.typeURL) { continuation.yield(XDSWatchUpdate(current)) }
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.shared.withLockedValue { _ = $0.watchers[type.typeURL]?.removeValue(forKey: id) }
        }
        return stream
    }

    /// The current state of `type`, or nil before its first accepted response.
    public func current<Value>(_ type: XDSResourceType<Value>) -> XDSWatchUpdate<Value>? {
        shared.withLockedValue { $0.state.currentState(type.typeURL) }.map(XDSWatchUpdate.init)
    }

    /// The server version of every resource held, by type URL and name (delta: each resource's
    /// own version; state of the world: the type's accepted `version_info`).
    public func resourceVersions() -> [String: [String: String]] {
        shared.withLockedValue { shared in
            shared.state.types.filter(\.value.received).mapValues { type in
                type.entries.mapValues { shared.state.variant == .delta ? $0.version : type.acceptedVersion }
            }
        }
    }

    /// A snapshot of the counters.
    public var counters: Counters { shared.withLockedValue { $0.counters } }

    // MARK: Running

    /// Connects and keeps a stream open, reconnecting with backoff, until
    /// ``shutdown()`` is called or the calling task is cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in self.stopped { break }
            }
            group.addTask { await self.reconnectLoop() }
            await group.next()
            group.cancelAll()
        }
        for watcher in shared.withLockedValue({ $0.stop() }) { watcher.finish() }
    }

    /// Ends the stream and ``run()``; watches finish. The last state stays readable through ``current(_:)``.
    public func shutdown() {
        for watcher in shared.withLockedValue({ $0.stop() }) { watcher.finish() }
        stopSignal.finish()
    }

    private func reconnectLoop() async {
        let servers = configuration.servers
        var attempts = configuration.backoff.attempts()
        var next = 0
        var failures = 0
        while !Task.isCancelled {
            let server = servers[next]
            let before = counters.responses
            let error = await runStream(to: server)
            if Task.isCancelled || shared.withLockedValue({ $0.stopped }) { return }
            if counters.responses > before {
                attempts.reset()
                failures = 0
            } else {
                failures += 1
            }
            // The next replica first, at once; the delay grows once per round in which every server failed.
            next = (next + 1) % servers.count
            let delay = failures % servers.count == 0 ? attempts.next() : configuration.backoff.initial
            var metadata: Logger.Metadata = [
                "server": "\(server)",
                "error": "\(error.map { "\($0)" } ?? "the server closed the stream")",
                "retry_in": "\(delay)",
            ]
            if servers.count > 1 { metadata["next_server"] = "\(servers[next])" }
            if let error = error as? RPCError, error.message.contains("decode message") {
                metadata["hint"] = "a response may exceed maxResponseBytes (\(configuration.maxResponseBytes) bytes); raise it"
            }
            logger.warning("ADS stream ended; reconnecting", metadata: metadata)
            do { try await Task.sleep(for: delay) } catch { return }
        }
    }

    /// One stream: connect, send the initial requests, process responses until the stream ends.
    private func runStream(to server: Server) async -> (any Error)? {
        let (requests, continuation) = AsyncStream<ADSProtocolState.Request>.makeStream()
        defer {
            continuation.finish()
            shared.withLockedValue { shared in
                shared.outgoing = nil
                shared.counters.connected = false
                shared.state.streamEnded()
            }
        }
        do {
            let transport = try HTTP2ClientTransport.Posix(
                target: server.grpcTarget,
                transportSecurity: try configuration.transportSecurity()
            )
            try await withGRPCClient(transport: transport) { grpc in
                let started = shared.withLockedValue { shared -> Bool in
                    guard !shared.stopped else { return false }
                    shared.outgoing = continuation
                    shared.counters.streams += 1
                    shared.counters.connected = true
                    shared.counters.server = server
                    for request in shared.state.streamStarted(now: .now) { continuation.yield(request) }
                    return true
                }
                guard started else { return }
                logger.info("ADS stream opening", metadata: ["server": "\(server)", "node": "\(configuration.node.id)"])
                let opened = OpenedFlag()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await self.expireLoop() }
                    group.addTask {
                        // A peer that accepts TCP but never lets the stream open (garbage, a stuck proxy)
                        // would otherwise hold the RPC queued forever.
                        try await Task.sleep(for: self.configuration.connectTimeout)
                        if !opened.isSet { throw XDSClientError.connectTimedOut(after: self.configuration.connectTimeout) }
                        try await Task.sleep(for: .seconds(365 * 24 * 3600))
                    }
                    group.addTask {
                        let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: grpc)
                        var options = CallOptions.defaults
                        options.waitForReady = false
                        options.maxResponseMessageBytes = self.configuration.maxResponseBytes
                        // grpc-swift-nio-transport's client deframer bounds inbound messages by the
                        // request limit (4 MiB by default), so both are raised.
                        options.maxRequestMessageBytes = self.configuration.maxResponseBytes
                        switch self.configuration.variant {
                        case .stateOfTheWorld:
                            try await ads.streamAggregatedResources(options: options) { writer in
                                opened.set()
                                for await case .sotw(let request) in requests { try await writer.write(request) }
                            } onResponse: { response in
                                defer { continuation.finish() }
                                for try await message in response.messages { self.receive(message) }
                            }
                        case .delta:
                            try await ads.deltaAggregatedResources(options: options) { writer in
                                opened.set()
                                for await case .delta(let request) in requests { try await writer.write(request) }
                            } onResponse: { response in
                                defer { continuation.finish() }
                                for try await message in response.messages { self.receive(message) }
                            }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
            return nil
        } catch {
            return error
        }
    }

    /// Fires does-not-exist timeouts while a stream is open.
    private func expireLoop() async throws {
        let tick = min(configuration.doesNotExistTimeout / 10, .seconds(1))
        while true {
            try await Task.sleep(for: tick)
            shared.withLockedValue { shared in
                for change in shared.state.expire(now: .now) { shared.deliver(change) }
            }
        }
    }

    private func receive(_ response: Envoy_Service_Discovery_V3_DiscoveryResponse) {
        receive(typeURL: response.typeURL, version: response.versionInfo, count: response.resources.count) { type in
            ResponseDecoder.decode(response, as: type)
        } apply: { state, decoded in
            state.handle(response, decoded: decoded, now: .now)
        }
    }

    private func receive(_ response: Envoy_Service_Discovery_V3_DeltaDiscoveryResponse) {
        receive(typeURL: response.typeURL, version: response.nonce, count: response.resources.count) { type in
            ResponseDecoder.decode(response, as: type)
        } apply: { state, decoded in
            state.handle(response, decoded: decoded, now: .now)
        }
    }

    /// Decodes outside the lock (a large push takes a while), then applies, answers and notifies in one step.
    private func receive(
        typeURL: String,
        version: String,
        count: Int,
        decode: (ErasedResourceType?) -> Result<ADSProtocolState.Decoded, XDSClientError>,
        apply: (inout ADSProtocolState, Result<ADSProtocolState.Decoded, XDSClientError>) -> (ADSProtocolState.Request, TypeChange?)
    ) {
        let decoded = decode(shared.withLockedValue { $0.state.registeredType(typeURL) })
        shared.withLockedValue { shared in
            let (request, change) = apply(&shared.state, decoded)
            shared.counters.responses += 1
            if case .failure = decoded { shared.counters.nacks += 1 } else { shared.counters.acks += 1 }
            shared.send(request)
            shared.deliver(change)
        }
        switch decoded {
        case .success:
            logger.debug("ACK", metadata: ["type_url": "\(typeURL)", "version": "\(version)", "resources": "\(count)"])
        case .failure(let error):
            logger.warning("NACK: response rejected, previous state kept", metadata: [
                "type_url": "\(typeURL)", "version": "\(version)", "error_detail": "\(error)",
            ])
        }
    }
}

/// Set once the RPC's request stream is open.
private final class OpenedFlag: Sendable {
    private let flag = Atomic(false)
    func set() { flag.store(true, ordering: .releasing) }
    var isSet: Bool { flag.load(ordering: .acquiring) }
}
