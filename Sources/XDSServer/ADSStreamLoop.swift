import GRPCCore
import MeshProto
import Logging

/// The protocol state of one ADS stream, free of I/O: ``SotWSession`` or ``DeltaSession``.
protocol ADSSession: Sendable {
    associatedtype Request: ADSRequest
    associatedtype Response: Sendable
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
}

extension Envoy_Service_Discovery_V3_DiscoveryRequest: ADSRequest {}
extension Envoy_Service_Discovery_V3_DeltaDiscoveryRequest: ADSRequest {}

/// Drives one ADS stream: merges the client's requests with snapshot changes
/// for its node into one ordered sequence of events and writes the responses
/// a session computes. Shared by the SotW and delta variants.
struct ADSStreamLoop {
    let cache: XDSSnapshotCache
    let counters: XDSServerCounters
    let registry: StreamRegistry
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
        defer { counters.streamClosed() }
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
                        logger.debug("ADS stream opened")
                        let updates = await cache.watch(nodeID: node)
                        group.addTask {
                            for await snapshot in updates { continuation.yield(.snapshot(snapshot)) }
                        }
                    }
                    let (outcome, produced) = session.handle(request)
                    record(outcome, typeURL: request.typeURL, logger: logger)
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
                }
            }
        }
    }

    private func record(_ outcome: RequestOutcome, typeURL: String, logger: Logger) {
        switch outcome {
        case .ack:
            counters.acked()
        case .nack(let message):
            counters.nacked()
            logger.warning("client rejected a response", metadata: ["type_url": "\(typeURL)", "error_detail": "\(message)"])
        case .stale:
            counters.stale()
        case .subscribe:
            break
        }
    }
}
