/// Exponential reconnect backoff with jitter: the delay starts at `initial`,
/// is multiplied by `multiplier` after each failed attempt up to `maximum`,
/// and each delay is spread by ±`jitter` (a fraction) so that many clients
/// do not reconnect in step after a control-plane restart.
public struct ReconnectBackoff: Sendable, Hashable {
    /// The first delay (10 ms by default).
    public var initial: Duration
    /// The longest delay (15 s by default).
    public var maximum: Duration
    /// The growth factor per attempt (2 by default).
    public var multiplier: Double
    /// The spread of each delay, 0...1 (0.2 by default: ±20 %).
    public var jitter: Double

    /// Creates a backoff policy.
    public init(initial: Duration = .milliseconds(10), maximum: Duration = .seconds(15), multiplier: Double = 2, jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = max(1, multiplier)
        self.jitter = min(max(0, jitter), 1)
    }

    /// The delays of successive attempts; ``Attempts/reset()`` after a stream that worked.
    public struct Attempts: Sendable {
        let policy: ReconnectBackoff
        var base: Duration

        /// The next delay to wait before reconnecting.
        public mutating func next<G: RandomNumberGenerator>(using generator: inout G) -> Duration {
            let factor = policy.jitter == 0 ? 1 : Double.random(in: (1 - policy.jitter)...(1 + policy.jitter), using: &generator)
            let delay = min(base * factor, policy.maximum)
            base = min(base * policy.multiplier, policy.maximum)
            return delay
        }

        /// The next delay, with the system random generator.
        public mutating func next() -> Duration {
            var generator = SystemRandomNumberGenerator()
            return next(using: &generator)
        }

        /// Starts over from the initial delay.
        public mutating func reset() { base = policy.initial }
    }

    /// A fresh sequence of attempts.
    public func attempts() -> Attempts { Attempts(policy: self, base: initial) }
}
