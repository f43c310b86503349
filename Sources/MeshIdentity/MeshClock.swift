import Foundation

/// The source of wall-clock time for certificate validity and rotation.
///
/// Production code uses ``SystemMeshClock``; tests inject a manual clock so
/// that rotation and expiry can be exercised without sleeping.
public protocol MeshClock: Sendable {
    /// The current wall-clock time.
    var now: Date { get }
    /// Suspends until `deadline` (or returns at once if it has passed). Throws on cancellation.
    func sleep(until deadline: Date) async throws
}

/// The real clock: `Date()` and `Task.sleep`.
public struct SystemMeshClock: MeshClock {
    public init() {}

    public var now: Date { Date() }

    public func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
        } else {
            try Task.checkCancellation()
        }
    }
}

/// Exponential backoff between failed attempts: `initial`, doubling, capped at `maximum`.
///
/// The defaults (0.5 s to 150 s) are the mesh's SVID rotation retry policy.
public struct Backoff: Sendable, Hashable {
    /// The first delay, in seconds.
    public var initial: TimeInterval
    /// The largest delay, in seconds.
    public var maximum: TimeInterval
    /// The growth factor between attempts.
    public var multiplier: Double

    public init(initial: TimeInterval = 0.5, maximum: TimeInterval = 150, multiplier: Double = 2) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
    }

    /// The delay before retry number `attempt` (0 for the first retry).
    public func delay(attempt: Int) -> TimeInterval {
        let exponent = Double(min(max(attempt, 0), 64))
        return min(maximum, initial * pow(multiplier, exponent))
    }
}
