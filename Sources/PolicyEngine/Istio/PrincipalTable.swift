/// Known principals (those of inventory workloads) with what they say about
/// their owner, found by a cheap multiplicative hash of the principal's bytes and
/// confirmed by string equality.
struct PrincipalTable: Sendable {
    private var table = SpanTable()
    private var principals: [String] = []
    private var infos: [PrincipalInfo] = []

    init() {}

    init(_ entries: [(String, PrincipalInfo)]) {
        var pairs: [(UInt64, Int32)] = []
        for (p, info) in entries {
            pairs.append((PrincipalTable.hash(p), Int32(principals.count)))
            principals.append(p)
            infos.append(info)
        }
        table = SpanTable(pairs: pairs)
    }

    /// A multiplicative hash over the UTF-8 bytes, eight at a time. Strings
    /// that are not stored contiguously are copied first, so equal strings
    /// always hash alike.
    @inline(__always)
    static func hash(_ s: String) -> UInt64 {
        if let h = s.utf8.withContiguousStorageIfAvailable(hash(bytes:)) { return h }
        return Array(s.utf8).withUnsafeBufferPointer(hash(bytes:))
    }

    @inline(__always)
    static func hash(bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(bytes.count)
        var i = 0
        let raw = UnsafeRawBufferPointer(bytes)
        while i + 8 <= bytes.count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
            i += 8
        }
        while i < bytes.count {
            h = (h ^ UInt64(bytes[i])) &* 0x0000_0100_0000_01B3
            i += 1
        }
        return h
    }

    @inline(__always)
    func lookup(_ principal: String) -> PrincipalInfo? {
        guard let span = table.lookup(PrincipalTable.hash(principal)) else { return nil }
        for k in span.range {
            let i = Int(table.pool[k])
            if principals[i] == principal { return infos[i] }
        }
        return nil
    }
}
