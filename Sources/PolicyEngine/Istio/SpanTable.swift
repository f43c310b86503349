/// An immutable open-addressing hash map from 64-bit keys to spans of one
/// shared `Int32` pool, with a multiplicative hash: a lookup is a few integer
/// operations and two array reads, cheaper than `Dictionary` with SipHash.
struct SpanTable: Sendable {
    /// One slot: a key and its span (count 0 = empty slot), 16 bytes, so a
    /// probe touches one cache line.
    private struct Entry: Sendable {
        var key: UInt64
        var span: Span
    }

    private var entries: [Entry] = []
    private var shift: UInt64 = 63
    private(set) var count = 0
    /// The values, grouped by key in ascending order.
    private(set) var pool: [Int32] = []

    init() {}

    /// Builds the table from (key, value) pairs; values of one key keep ascending order.
    init(pairs: [(UInt64, Int32)]) {
        let sorted = pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var keyed: [(UInt64, Span)] = []
        var i = 0
        while i < sorted.count {
            let key = sorted[i].0
            let start = Int32(pool.count)
            var last: Int32?
            while i < sorted.count && sorted[i].0 == key {
                if sorted[i].1 != last { pool.append(sorted[i].1); last = sorted[i].1 }
                i += 1
            }
            keyed.append((key, Span(start: start, count: Int32(pool.count) - start)))
        }
        count = keyed.count
        var bits: UInt64 = 1
        while (1 << bits) < max(2, keyed.count * 2) { bits += 1 }
        shift = 64 - bits
        entries = Array(repeating: Entry(key: 0, span: .empty), count: 1 << Int(bits))
        let mask = entries.count - 1
        for (key, span) in keyed {
            var s = SpanTable.hash(key, shift)
            while entries[s].span.count != 0 { s = (s + 1) & mask }
            entries[s] = Entry(key: key, span: span)
        }
    }

    @inline(__always)
    private static func hash(_ key: UInt64, _ shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    var isEmpty: Bool { count == 0 }

    /// The span of values stored under `key`, if any.
    @inline(__always)
    func lookup(_ key: UInt64) -> Span? {
        if count == 0 { return nil }
        let mask = entries.count - 1
        var s = SpanTable.hash(key, shift)
        while true {
            let e = entries[s]
            if e.span.count == 0 { return nil }
            if e.key == key { return e.span }
            s = (s + 1) & mask
        }
    }
}
