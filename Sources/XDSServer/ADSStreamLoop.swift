import GRPCCore
import Logging

/// Drives one ADS stream: merges the client's requests with snapshot changes
/// for its node into one ordered sequence of events and writes the responses
/// a session computes. Shared by the SotW and delta variants.
struct ADSStreamLoop {
    let cache: XDSSnapshotCache
    let counters: XDSServerCounters
    let registry: StreamRegistry
    let logger: Logger
    let kind: String

    private enum Event<Request: Sendable>: Sendable {
        case request(Request)
        case snapshot(XDSSnapshot)
        case closed((any Error)?)
    }

    static var shuttingDown: RPCError {
        RPCError(code: .unavailable, message: "the xDS server is shutting down; reconnect to another instance")
    }

    func run<Request: Sendable, Response: Sendable>(
        requests: RPCAsyncSequence<Request, any Error>,
        nodeID: (Request) -> String,
        typeURL: (Request) -> String,
        handle: (Request) -> (RequestOutcome, [Response]),
        update: (XDSSnapshot) -> [Response],
        write: (Response) async throws -> Void
    ) async throws {
        counters.streamOpened()
        defer { counters.streamClosed() }
        var logger = self.logger
        logger[metadataKey: "xds.stream"] = "\(kind)"

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
                let responses: [Response]
                switch event {
                case .request(let request):
                    guard !typeURL(request).isEmpty else {
                        logger.warning("ADS request without type_url; ending the stream")
                        throw RPCError(code: .invalidArgument, message: "type_url is required on an aggregated (ADS) stream")
                    }
                    if !watching {
                        watching = true
                        let node = nodeID(request)
                        logger[metadataKey: "xds.node"] = "\(node)"
                        logger.debug("ADS stream opened")
                        let updates = await cache.watch(nodeID: node)
                        group.addTask {
                            for await snapshot in updates { continuation.yield(.snapshot(snapshot)) }
                        }
                    }
                    let (outcome, produced) = handle(request)
                    record(outcome, typeURL: typeURL(request), logger: logger)
                    responses = produced
                case .snapshot(let snapshot):
                    responses = update(snapshot)
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
