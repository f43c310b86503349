import Synchronization

/// Counters of an ``XDSServer``: connected streams, pushes, ACKs and NACKs.
///
/// Read them with ``snapshot()``; the server updates them atomically.
public final class XDSServerCounters: Sendable {
    /// A point-in-time copy of the counters.
    public struct Values: Sendable, Hashable {
        /// ADS streams open right now.
        public var connectedStreams: Int
        /// ADS streams accepted since start.
        public var totalStreams: Int
        /// Responses sent (SotW and delta).
        public var pushes: Int
        /// Requests that acknowledged a response.
        public var acks: Int
        /// Requests that rejected a response (carried `error_detail`).
        public var nacks: Int
        /// Requests ignored because their nonce was stale.
        public var staleRequests: Int
    }

    private let connected = Atomic<Int>(0)
    private let total = Atomic<Int>(0)
    private let pushCount = Atomic<Int>(0)
    private let ackCount = Atomic<Int>(0)
    private let nackCount = Atomic<Int>(0)
    private let staleCount = Atomic<Int>(0)

    init() {}

    /// The current values.
    public func snapshot() -> Values {
        Values(
            connectedStreams: connected.load(ordering: .relaxed),
            totalStreams: total.load(ordering: .relaxed),
            pushes: pushCount.load(ordering: .relaxed),
            acks: ackCount.load(ordering: .relaxed),
            nacks: nackCount.load(ordering: .relaxed),
            staleRequests: staleCount.load(ordering: .relaxed)
        )
    }

    func streamOpened() {
        connected.add(1, ordering: .relaxed)
        total.add(1, ordering: .relaxed)
    }

    func streamClosed() { connected.subtract(1, ordering: .relaxed) }
    func pushed() { pushCount.add(1, ordering: .relaxed) }
    func acked() { ackCount.add(1, ordering: .relaxed) }
    func nacked() { nackCount.add(1, ordering: .relaxed) }
    func stale() { staleCount.add(1, ordering: .relaxed) }
}
