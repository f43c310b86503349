import GRPCCore
import MeshProto
import Logging

/// The protocol state of one ADS stream, free of I/O: ``SotWSession`` or ``DeltaSession``.
protocol ADSSession: Sendable {
    associatedtype Request: ADSRequest
    associatedtype Response: ADSResponse
    /// `sotw` or `delta`, for logs.
    static var kind: String { get }
    /// Classifies a request and returns what to send.
    mutating func handle(_ request: Request) -> (RequestOutcome, [Response])
    /// Installs a new snapshot and returns what to send.
    mutating func update(_ snapshot: XDSSnapshot) -> [Response]
}

/// What the stream loop reads of either request type.
protocol ADSRequest: Sendable {
    var node: Envoy_Config_Core_V3_Node { get }
    var typeURL: String { get }
    var responseNonce: String { get }
}

/// What the stream loop reads of either response type.
protocol ADSResponse: Sendable {
    var typeURL: String { get }
    var nonce: String { get }
    /// The version the connection table reports (SotW `version_info`, delta `system_version_info`).
    var reportedVersion: String { get }
}

extension Envoy_Service_Discovery_V3_DiscoveryRequest: ADSRequest {}
extension Envoy_Service_Discovery_V3_DeltaDiscoveryRequest: ADSRequest {}
extension Envoy_Service_Discovery_V3_DiscoveryResponse: ADSResponse {
    var reportedVersion: String { versionInfo }
}
extension Envoy_Service_Discovery_V3_DeltaDiscoveryResponse: ADSResponse {
    var reportedVersion: String { systemVersionInfo }
}

/// Drives one ADS stream: merges the client's requests with snapshot changes
/// for its node into one ordered sequence of events and writes the responses
/// a session computes. Shared by the SotW and delta variants.
struct ADSStreamLoop {
    let cache: XDSSnapshotCache
    let counters: XDSServerCounters
    let registry: StreamRegistry
    let connections: XDSConnectionTable
    let observer: (any XDSServerObserver)?
    let logger: Logger

    private enum Event<Request: Sendable>: Sendable {
        case request(Request)
        case snapshot(XDSSnapshot)
        case closed((any Error)?)
    }

    static var shuttingDown: RPCError {
        RPCError(code: .unavailable, message: "the xDS server is shutting down; reconnect to another instance")
    }

    func run<Session: ADSSession>(
        _ session: Session,
        requests: RPCAsyncSequence<Session.Request, any Error>,
        write: (Session.Response) async throws -> Void
    ) async throws {
        typealias Request = Session.Request
        var session = session
        counters.streamOpened()
        let connection = connections.open(variant: Session.kind)
        defer {
            connections.close(connection)
            counters.streamClosed()
        }
        var logger = self.logger
        logger[metadataKey: "xds.stream"] = "\(Session.kind)"

        let (events, continuation) = AsyncStream<Event<Request>>.makeStream()
        guard let registration = registry.register({ continuation.yield(.closed(Self.shuttingDown)) }) else {
            throw Self.shuttingDown
        }
        defer { registry.unregister(registration) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await request in requests { continuation.yield(.request(request)) }
                    continuation.yield(.closed(nil))
                } catch {
                    continuation.yield(.closed(error))
                }
            }
            defer {
                group.cancelAll()
                continuation.finish()
            }
            var watching = false
            for await event in events {
                let responses: [Session.Response]
                switch event {
                case .request(let request):
                    guard !request.typeURL.isEmpty else {
                        logger.warning("ADS request without type_url; ending the stream")
                        throw RPCError(code: .invalidArgument, message: "type_url is required on an aggregated (ADS) stream")
                    }
                    if !watching {
                        watching = true
                        let node = request.node.id
                        logger[metadataKey: "xds.node"] = "\(node)"
                        connections.identify(connection, nodeID: node)
                        logger.debug("ADS stream opened")
                        let updates = await cache.watch(nodeID: node)
                        group.addTask {
                            for await snapshot in updates { continuation.yield(.snapshot(snapshot)) }
                        }
                    }
                    let (outcome, produced) = session.handle(request)
                    record(outcome, request: request, connection: connection, logger: logger)
                    responses = produced
                case .snapshot(let snapshot):
                    responses = session.update(snapshot)
                case .closed(let error):
                    if let error {
                        logger.debug("ADS stream ended", metadata: ["error": "\(error)"])
                        throw error
                    }
                    logger.debug("ADS stream closed by the client")
                    return
                }
                for response in responses {
                    try await write(response)
                    counters.pushed()
                    connections.sent(connection, typeURL: response.typeURL, version: response.reportedVersion, nonce: response.nonce)
                    observer?.pushed(typeURL: response.typeURL)
                }
            }
        }
    }

    private func record(_ outcome: RequestOutcome, request: some ADSRequest, connection: UInt64, logger: Logger) {
        let typeURL = request.typeURL
        switch outcome {
        case .ack:
            counters.acked()
            if let answered = connections.answered(connection, nonce: request.responseNonce, nack: nil) {
                observer?.acknowledged(typeURL: answered.typeURL, delay: answered.delay)
            }
        case .nack(let message):
            counters.nacked()
            _ = connections.answered(connection, nonce: request.responseNonce, nack: message)
            observer?.rejected(typeURL: typeURL, detail: message)
            logger.warning("client rejected a response", metadata: ["type_url": "\(typeURL)", "error_detail": "\(message)"])
        case .stale:
            counters.stale()
        case .subscribe:
            break
        }
    }
}
