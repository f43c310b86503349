import Foundation
import Logging
import NIOConcurrencyHelpers

/// Errors reported by an ``SVIDSource``.
public enum SVIDSourceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No SVID has been obtained yet, or the last one expired before a renewal succeeded.
    case noValidSVID

    public var description: String {
        "no valid SVID: none obtained yet, or the last one expired before renewal succeeded"
    }
}

/// Holds a workload's current X509-SVID and keeps it fresh.
///
/// `run()` obtains an SVID from an ``SVIDProvider``, renews it at half of its
/// lifetime, retries failures with ``Backoff`` (0.5 s to 150 s by default),
/// and keeps serving the old SVID until it expires. Every new SVID is published
/// to the streams returned by ``updates()``. All timing comes from a
/// ``MeshClock`` so tests can drive it without sleeping.
///
/// ```swift
/// let source = SVIDSource(provider: LocalCAProvider(authority: ca, id: id))
/// let task = Task { try await source.run() }   // or run it in a ServiceGroup
/// let svid = try await source.firstSVID()
/// ```
public final class SVIDSource: Sendable {
    private struct State {
        var svid: X509SVID?
        var generation: UInt64 = 0
        var subscribers: [UInt64: AsyncStream<X509SVID>.Continuation] = [:]
        var nextSubscriber: UInt64 = 0
    }

    private let provider: (any SVIDProvider)?
    private let clock: any MeshClock
    private let backoff: Backoff
    private let logger: Logger
    private let state: NIOLockedValueBox<State>

    /// A source that renews through `provider`.
    public init(provider: any SVIDProvider, clock: any MeshClock = SystemMeshClock(), backoff: Backoff = Backoff(), logger: Logger = Logger(label: "mesh.identity.svid")) {
        self.provider = provider
        self.clock = clock
        self.backoff = backoff
        self.logger = logger
        self.state = NIOLockedValueBox(State())
    }

    /// A source with a fixed SVID that is never renewed (for tests and static files).
    public init(svid: X509SVID, clock: any MeshClock = SystemMeshClock(), logger: Logger = Logger(label: "mesh.identity.svid")) {
        self.provider = nil
        self.clock = clock
        self.backoff = Backoff()
        self.logger = logger
        self.state = NIOLockedValueBox(State(svid: svid, generation: 1))
    }

    /// The current SVID if it has not expired, else nil.
    public var current: X509SVID? { currentWithGeneration?.svid }

    /// The current SVID and a number that changes whenever it is replaced.
    public var currentWithGeneration: (svid: X509SVID, generation: UInt64)? {
        let now = clock.now
        return state.withLockedValue { state in
            guard let svid = state.svid, now <= svid.expiresAt else { return nil }
            return (svid, state.generation)
        }
    }

    /// The current SVID, or ``SVIDSourceError/noValidSVID``.
    public func requireCurrent() throws -> X509SVID {
        guard let svid = current else { throw SVIDSourceError.noValidSVID }
        return svid
    }

    /// A stream that yields the current SVID (if any) and then every new one.
    public func updates() -> AsyncStream<X509SVID> {
        let (stream, continuation) = AsyncStream<X509SVID>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let current = self.current
        let key = state.withLockedValue { state in
            let key = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[key] = continuation
            return key
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLockedValue { $0.subscribers.removeValue(forKey: key) }
        }
        if let current { continuation.yield(current) }
        return stream
    }

    /// Waits for the first valid SVID.
    public func firstSVID() async throws -> X509SVID {
        if let svid = current { return svid }
        for await svid in updates() { return svid }
        try Task.checkCancellation()
        throw SVIDSourceError.noValidSVID
    }

    /// Replaces the SVID and notifies subscribers (used by providers that push, such as the Workload API).
    public func publish(_ svid: X509SVID) {
        let subscribers = state.withLockedValue { state in
            state.svid = svid
            state.generation += 1
            return Array(state.subscribers.values)
        }
        logger.info(
            "SVID updated",
            metadata: ["spiffe_id": "\(svid.id)", "expires": "\(svid.expiresAt)", "renew_at": "\(svid.renewAt)"]
        )
        for subscriber in subscribers { subscriber.yield(svid) }
    }

    /// Obtains and renews SVIDs until the task is cancelled. Returns at once for a fixed SVID.
    public func run() async throws {
        guard let provider else { return }
        defer { finishSubscribers() }
        var failures = 0
        while !Task.isCancelled {
            if let svid = state.withLockedValue({ $0.svid }), clock.now < svid.renewAt {
                try await clock.sleep(until: svid.renewAt)
                continue
            }
            do {
                let svid = try await provider.fetchSVID()
                failures = 0
                publish(svid)
            } catch is CancellationError {
                return
            } catch {
                let delay = backoff.delay(attempt: failures)
                failures += 1
                let keeping = current.map { "keeping SVID valid until \($0.expiresAt)" } ?? "no valid SVID"
                logger.warning(
                    "SVID renewal failed; retrying in \(delay) s, \(keeping)",
                    metadata: ["error": "\(error)", "attempt": "\(failures)"]
                )
                try await clock.sleep(until: clock.now.addingTimeInterval(delay))
            }
        }
    }

    private func finishSubscribers() {
        let subscribers = state.withLockedValue { state in
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }
}
