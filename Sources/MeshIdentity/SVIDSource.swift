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
/// lifetime, retries failures with ``Backoff`` (0.5 s to 150 s by default, but
/// at most half the time the SVID has left, and 15 s once it has expired),
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
        /// When `svid` was obtained from its CA, if known.
        var obtainedAt: Date?
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

    /// The SVID held, even if it has expired (for status pages; ``current`` is what to present).
    public var latest: X509SVID? { state.withLockedValue { $0.svid } }

    /// When ``run()`` renews the SVID held (nil without one).
    public var renewalTime: Date? {
        state.withLockedValue { state in state.svid.map { Self.renewalTime($0, obtainedAt: state.obtainedAt) } }
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
    /// `obtainedAt`, when the SVID was just obtained from a CA, lets renewal tell a back-dated
    /// `notBefore` from an old certificate (see ``renewalTime(_:obtainedAt:)``).
    public func publish(_ svid: X509SVID, obtainedAt: Date? = nil) {
        let subscribers = state.withLockedValue { state in
            state.svid = svid
            state.obtainedAt = obtainedAt
            state.generation += 1
            return Array(state.subscribers.values)
        }
        logger.info(
            "SVID updated",
            metadata: ["spiffe_id": "\(svid.id)", "expires": "\(svid.expiresAt)", "renew_at": "\(Self.renewalTime(svid, obtainedAt: obtainedAt))"]
        )
        for subscriber in subscribers { subscriber.yield(svid) }
    }

    /// Obtains and renews SVIDs until the task is cancelled. Returns at once for a fixed SVID.
    public func run() async throws {
        guard let provider else { return }
        defer { finishSubscribers() }
        var failures = 0
        while !Task.isCancelled {
            if let (svid, obtainedAt, generation) = state.withLockedValue({ state in state.svid.map { ($0, state.obtainedAt, state.generation) } }) {
                let renewAt = Self.renewalTime(svid, obtainedAt: obtainedAt)
                if clock.now < renewAt {
                    try await sleep(until: renewAt, orUntilPublishedAfter: generation)
                    continue
                }
            }
            do {
                let svid = try await provider.fetchSVID()
                failures = 0
                publish(svid, obtainedAt: clock.now)
            } catch is CancellationError {
                return
            } catch {
                let delay = Self.retryDelay(backoff.delay(attempt: failures), until: current?.expiresAt, now: clock.now)
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

    /// Sleeps until `deadline`, or until an SVID newer than `generation` is published by someone
    /// else (its renewal time may be earlier: a credential renewed out of turn with a shorter life).
    private func sleep(until deadline: Date, orUntilPublishedAfter generation: UInt64) async throws {
        let updates = self.updates()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [clock] in try await clock.sleep(until: deadline) }
            group.addTask { [state] in
                for await _ in updates where state.withLockedValue({ $0.generation }) != generation { return }
                // The updates end only when the source stops; the deadline sleeper or cancellation ends the wait.
                try await Task.sleep(nanoseconds: .max)
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// The longest wait between renewal attempts once the SVID has expired (traffic needing it is failing).
    static let expiredRetryCap: TimeInterval = 15

    /// The backoff delay, shortened so that a few attempts still fall before `expiry` (at most half
    /// the time left) and, past expiry, to ``expiredRetryCap``: a CA that comes back is used soon.
    static func retryDelay(_ delay: TimeInterval, until expiry: Date?, now: Date) -> TimeInterval {
        guard let expiry else { return min(delay, expiredRetryCap) }
        return min(delay, max(0.5, expiry.timeIntervalSince(now) / 2))
    }

    /// When to renew: the SVID's half-life, or, if that had passed already when it was obtained
    /// (CAs back-date `notBefore` for clock skew, ours by 60 s), half of what was left then. A 40 s
    /// certificate back-dated by 60 s would otherwise be renewed in a tight loop.
    public static func renewalTime(_ svid: X509SVID, obtainedAt: Date?) -> Date {
        guard let obtainedAt, svid.renewAt <= obtainedAt else { return svid.renewAt }
        return obtainedAt.addingTimeInterval(svid.expiresAt.timeIntervalSince(obtainedAt) / 2)
    }

    private func finishSubscribers() {
        let subscribers = state.withLockedValue { state in
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }
}
