/// Known principals (those of inventory workloads) with what they say about
/// their owner, found by a cheap FNV-1a hash of the principal's bytes and
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

    @inline(__always)
    static func hash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 {
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3
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
