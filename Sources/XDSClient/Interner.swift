import NIOConcurrencyHelpers

/// Hands out one shared instance per distinct value, so that values many
/// resources repeat (the service map of every pod of one deployment, say) are
/// stored once: Swift collections and strings share their storage on copy.
///
/// Bounded: past `capacity` distinct values the table starts over, which only
/// stops sharing for what comes later; nothing already handed out changes.
final class Interner<Value: Hashable & Sendable>: Sendable {
    private let table = NIOLockedValueBox<[Value: Value]>([:])
    private let capacity: Int

    init(capacity: Int = 65_536) {
        self.capacity = capacity
    }

    func intern(_ value: Value) -> Value {
        table.withLockedValue { table in
            if let shared = table[value] { return shared }
            if table.count >= capacity { table.removeAll(keepingCapacity: true) }
            table[value] = value
            return value
        }
    }
}
