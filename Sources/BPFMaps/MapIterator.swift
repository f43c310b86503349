#if os(Linux)
/// The keys of a map as a Swift `Sequence` (`bpf_map_get_next_key`).
///
/// Iteration stops at the end or at the first error; check ``MapKeys/Iterator/error``
/// (or use ``BPFMap/allKeys(as:)``, which throws) when errors matter.
public struct MapKeys<Key: BPFMapRepresentable>: Sequence, Sendable {
    let map: BPFMap

    /// Iterates the keys; a key deleted concurrently may be skipped or the walk restart (kernel semantics).
    public struct Iterator: IteratorProtocol {
        let map: BPFMap
        var current: Key?
        var done = false
        /// The error that ended the iteration early, if any.
        public private(set) var error: BPFError?

        public mutating func next() -> Key? {
            guard !done else { return nil }
            do {
                guard let next = try map.nextKey(after: current) else { done = true; return nil }
                current = next
                return next
            } catch {
                self.error = error
                done = true
                return nil
            }
        }
    }

    public func makeIterator() -> Iterator { Iterator(map: map, current: nil) }
}

/// The entries of a map as a Swift `Sequence` of `(key, value)`.
///
/// Keys deleted between the key walk and the lookup are skipped.
public struct MapEntries<Key: BPFMapRepresentable, Value: BPFMapRepresentable>: Sequence, Sendable {
    let map: BPFMap

    /// Iterates `(key, value)` pairs.
    public struct Iterator: IteratorProtocol {
        var keys: MapKeys<Key>.Iterator
        let map: BPFMap
        /// The error that ended the iteration early, if any.
        public private(set) var error: BPFError?

        public mutating func next() -> (key: Key, value: Value)? {
            while let key = keys.next() {
                do {
                    if let value = try map.lookup(key, as: Value.self) { return (key, value) }
                } catch {
                    self.error = error
                    return nil
                }
            }
            error = keys.error
            return nil
        }
    }

    public func makeIterator() -> Iterator { Iterator(keys: MapKeys<Key>(map: map).makeIterator(), map: map) }
}

extension BPFMap {
    /// The keys of the map as a sequence.
    public func keys<K: BPFMapRepresentable>(as _: K.Type = K.self) -> MapKeys<K> { MapKeys(map: self) }

    /// The entries of the map as a sequence (not for per-CPU maps; see ``perCPUEntries(key:value:)``).
    public func entries<K: BPFMapRepresentable, V: BPFMapRepresentable>(key _: K.Type = K.self, value _: V.Type = V.self) -> MapEntries<K, V> {
        MapEntries(map: self)
    }

    /// All keys, throwing the error that interrupted the walk, if any.
    public func allKeys<K: BPFMapRepresentable>(as _: K.Type = K.self) throws(BPFError) -> [K] {
        try checkKey(K.self)
        var it = MapKeys<K>(map: self).makeIterator()
        var out: [K] = []
        while let k = it.next() { out.append(k) }
        if let e = it.error { throw e }
        return out
    }

    /// All entries of a per-CPU map, one value per possible CPU.
    public func perCPUEntries<K: BPFMapRepresentable, V: BPFMapRepresentable>(key _: K.Type = K.self, value _: V.Type = V.self) throws(BPFError) -> [(key: K, values: [V])] {
        var out: [(key: K, values: [V])] = []
        for k in try allKeys(as: K.self) {
            if let v = try lookupPerCPU(k, as: V.self) { out.append((k, v)) }
        }
        return out
    }
}
#endif
