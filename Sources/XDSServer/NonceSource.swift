/// Produces the nonces of one stream: unique, increasing, never empty.
struct NonceSource: Sendable {
    private var next: UInt64 = 1

    mutating func make() -> String {
        defer { next += 1 }
        return String(next)
    }
}
