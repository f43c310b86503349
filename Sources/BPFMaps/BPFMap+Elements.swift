#if os(Linux)
import CLibBPF
import Glibc

extension BPFMap {
    /// The value stored under `key`, or nil when the key is absent.
    ///
    /// For per-CPU maps use ``lookupPerCPU(_:as:)``.
    public func lookup<K: BPFMapRepresentable, V: BPFMapRepresentable>(_ key: K, as _: V.Type = V.self) throws(BPFError) -> V? {
        try checkKey(K.self)
        try checkValue(V.self)
        guard !info.type.isPerCPU else {
            throw .invalidArgument(operation: "lookup in \(info.name)", argument: "map type \(info.type) is per-CPU: use lookupPerCPU")
        }
        return try lookupRaw(key, valueSize: V.bpfSize) { V(bpfBytes: $0) }
    }

    /// The value stored under `key` on every possible CPU (index = CPU), or nil when absent.
    public func lookupPerCPU<K: BPFMapRepresentable, V: BPFMapRepresentable>(_ key: K, as _: V.Type = V.self) throws(BPFError) -> [V]? {
        try checkKey(K.self)
        try checkValue(V.self)
        guard info.type.isPerCPU else {
            throw .invalidArgument(operation: "lookupPerCPU in \(info.name)", argument: "map type \(info.type) is not per-CPU: use lookup")
        }
        return try lookupRaw(key, valueSize: valueBufferSize) { decodePerCPU($0, as: V.self) }
    }

    func decodePerCPU<V: BPFMapRepresentable>(_ raw: UnsafeRawBufferPointer, as _: V.Type) -> [V] {
        let stride = (V.bpfSize + 7) / 8 * 8
        return (0..<possibleCPUs).map { cpu in
            V(bpfBytes: UnsafeRawBufferPointer(rebasing: raw[(cpu * stride)..<(cpu * stride + V.bpfSize)]))
        }
    }

    func lookupRaw<K: BPFMapRepresentable, R>(_ key: K, valueSize: Int, _ decode: (UnsafeRawBufferPointer) -> R) throws(BPFError) -> R? {
        let name = info.name
        return try fd.withFD { fd throws(BPFError) -> R? in
            let result: Result<R?, BPFError> = withUnsafeTemporaryAllocation(byteCount: max(valueSize, 8), alignment: 8) { value in
                let rc = key.withBPFBytes { bpf_map_lookup_elem(fd, $0.baseAddress, value.baseAddress) }
                if rc == 0 { return .success(decode(UnsafeRawBufferPointer(rebasing: value[0..<valueSize]))) }
                if -rc == ENOENT { return .success(nil) }
                return .failure(.from(errno: -rc, operation: "lookup in \(name)", invalid: "key"))
            }
            return try result.get()
        }
    }

    /// Stores `value` under `key`; `mode` decides what happens when the key exists.
    ///
    /// Throws ``BPFError/mapFull(operation:)`` when a new key does not fit,
    /// ``BPFError/keyExists(operation:)`` / ``BPFError/keyNotFound(operation:)`` for
    /// `.noExist` / `.exist` violations.
    public func update<K: BPFMapRepresentable, V: BPFMapRepresentable>(_ key: K, _ value: V, mode: UpdateMode = .any) throws(BPFError) {
        try checkKey(K.self)
        try checkValue(V.self)
        guard !info.type.isPerCPU else {
            throw .invalidArgument(operation: "update \(info.name)", argument: "map type \(info.type) is per-CPU: use updatePerCPU")
        }
        try value.withBPFBytes { v in Result { () throws(BPFError) in try updateRaw(key, v, mode: mode) } }.get()
    }

    /// Stores one value per possible CPU (`values.count` must equal ``possibleCPUs``).
    public func updatePerCPU<K: BPFMapRepresentable, V: BPFMapRepresentable>(_ key: K, _ values: [V], mode: UpdateMode = .any) throws(BPFError) {
        try checkKey(K.self)
        try checkValue(V.self)
        guard info.type.isPerCPU else {
            throw .invalidArgument(operation: "updatePerCPU \(info.name)", argument: "map type \(info.type) is not per-CPU: use update")
        }
        guard values.count == possibleCPUs else {
            throw .invalidArgument(operation: "updatePerCPU \(info.name)", argument: "values: \(values.count) given, one per possible CPU (\(possibleCPUs)) needed")
        }
        let stride = (V.bpfSize + 7) / 8 * 8
        var raw = [UInt8](repeating: 0, count: stride * possibleCPUs)
        for (cpu, v) in values.enumerated() {
            v.withBPFBytes { raw.replaceSubrange((cpu * stride)..<(cpu * stride + V.bpfSize), with: $0) }
        }
        try raw.withUnsafeBytes { v in Result { () throws(BPFError) in try updateRaw(key, v, mode: mode) } }.get()
    }

    func updateRaw<K: BPFMapRepresentable>(_ key: K, _ value: UnsafeRawBufferPointer, mode: UpdateMode) throws(BPFError) {
        let name = info.name
        let type = info.type
        try fd.withFD { fd throws(BPFError) in
            let rc = key.withBPFBytes { bpf_map_update_elem(fd, $0.baseAddress, value.baseAddress, mode.rawValue) }
            guard rc == 0 else {
                if type.isArray && -rc == E2BIG {
                    throw BPFError.invalidArgument(operation: "update \(name)", argument: "key: array index beyond max entries")
                }
                let hint = type.isArray
                    ? "key (index beyond max entries) or mode (.noExist is invalid for arrays)"
                    : "key or value (for an LPM trie: prefix length beyond the key's address bits)"
                throw BPFError.from(errno: -rc, operation: "update \(name)", invalid: hint)
            }
        }
    }

    /// Removes `key`; throws ``BPFError/keyNotFound(operation:)`` when it is absent.
    public func delete<K: BPFMapRepresentable>(_ key: K) throws(BPFError) {
        try checkKey(K.self)
        let name = info.name
        let type = info.type
        try fd.withFD { fd throws(BPFError) in
            let rc = key.withBPFBytes { bpf_map_delete_elem(fd, $0.baseAddress) }
            guard rc == 0 else {
                throw BPFError.from(errno: -rc, operation: "delete from \(name)",
                                    invalid: type.isArray ? "map type \(type): array elements cannot be deleted" : "key")
            }
        }
    }

    /// The key after `key` in the map's internal order (nil key: the first), or nil at the end.
    public func nextKey<K: BPFMapRepresentable>(after key: K?) throws(BPFError) -> K? {
        try checkKey(K.self)
        let name = info.name
        return try fd.withFD { fd throws(BPFError) -> K? in
            let result: Result<K?, BPFError> = withUnsafeTemporaryAllocation(byteCount: max(K.bpfSize, 8), alignment: 8) { next in
                let rc: Int32
                if let key {
                    rc = key.withBPFBytes { bpf_map_get_next_key(fd, $0.baseAddress, next.baseAddress) }
                } else {
                    rc = bpf_map_get_next_key(fd, nil, next.baseAddress)
                }
                if rc == 0 { return .success(K(bpfBytes: UnsafeRawBufferPointer(rebasing: next[0..<K.bpfSize]))) }
                if -rc == ENOENT { return .success(nil) }
                return .failure(.from(errno: -rc, operation: "next key in \(name)", invalid: "key"))
            }
            return try result.get()
        }
    }
}
#endif
