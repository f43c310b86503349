/// An immutable open-addressing hash map from 64-bit keys to spans of one
/// shared `Int32` pool, with a multiplicative hash: a lookup is a few integer
/// operations and two array reads, cheaper than `Dictionary` with SipHash.
struct SpanTable: Sendable {
    private var keys: [UInt64] = []
    private var spans: [Span] = []
    private var slots: [Int32] = []
    private var shift: UInt64 = 63
    /// The values, grouped by key in ascending order.
    private(set) var pool: [Int32] = []

    init() {}

    /// Builds the table from (key, value) pairs; values of one key keep ascending order.
    init(pairs: [(UInt64, Int32)]) {
        let sorted = pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var i = 0
        while i < sorted.count {
            let key = sorted[i].0
            let start = Int32(pool.count)
            var last: Int32?
            while i < sorted.count && sorted[i].0 == key {
                if sorted[i].1 != last { pool.append(sorted[i].1); last = sorted[i].1 }
                i += 1
            }
            keys.append(key)
            spans.append(Span(start: start, count: Int32(pool.count) - start))
        }
        var bits: UInt64 = 1
        while (1 << bits) < max(2, keys.count * 2) { bits += 1 }
        shift = 64 - bits
        slots = Array(repeating: -1, count: 1 << Int(bits))
        let mask = slots.count - 1
        for (entry, key) in keys.enumerated() {
            var s = SpanTable.hash(key, shift)
            while slots[s] >= 0 { s = (s + 1) & mask }
            slots[s] = Int32(entry)
        }
    }

    @inline(__always)
    private static func hash(_ key: UInt64, _ shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    var isEmpty: Bool { keys.isEmpty }

    /// The span of values stored under `key`, if any.
    @inline(__always)
    func lookup(_ key: UInt64) -> Span? {
        if keys.isEmpty { return nil }
        let mask = slots.count - 1
        var s = SpanTable.hash(key, shift)
        while true {
            let e = slots[s]
            if e < 0 { return nil }
            if keys[Int(e)] == key { return spans[Int(e)] }
            s = (s + 1) & mask
        }
    }
}
