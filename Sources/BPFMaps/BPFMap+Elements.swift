#if os(Linux)
import CLibBPF
import Glibc

extension BPFMap {
    /// The value stored under `key`, or nil when the key is absent.
    ///
    /// For per-CPU maps use ``lookupPerCPU(_:as:)``.
    @inlinable
    public func lookup<K: BPFMapRepresentable, V: BPFMapRepresentable>(_ key: K, as _: V.Type = V.self) throws(BPFError) -> V? {
        try checkKey(K.self)
        try checkValue(V.self)
        guard !isPerCPU else { throw elementError(0, "per-CPU") }
        var rc: Int32 = 0
        let value: V? = try fd.withFD { fd throws(BPFError) -> V? in
            withUnsafeTemporaryAllocation(byteCount: V.bpfSize, alignment: 8) { buffer -> V? in
                rc = key.withBPFBytes { bpf_map_lookup_elem(fd, $0.baseAddress, buffer.baseAddress) }
                return rc == 0 ? V(bpfBytes: UnsafeRawBufferPointer(buffer)) : nil
            }
        }
        if rc != 0 && rc != -ENOENT { throw elementError(rc, "lookup") }
        return value
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
    @inlinable
    public func update<K: BPFMapRepresentable, V: BPFMapRepresentable>(_ key: K, _ value: V, mode: UpdateMode = .any) throws(BPFError) {
        try checkKey(K.self)
        try checkValue(V.self)
        guard !isPerCPU else { throw elementError(0, "per-CPU") }
        let rc: Int32 = try fd.withFD { fd throws(BPFError) -> Int32 in
            key.withBPFBytes { k in value.withBPFBytes { v in bpf_map_update_elem(fd, k.baseAddress, v.baseAddress, mode.rawValue) } }
        }
        if rc != 0 { throw elementError(rc, "update") }
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
        let rc: Int32 = try fd.withFD { fd throws(BPFError) -> Int32 in
            key.withBPFBytes { bpf_map_update_elem(fd, $0.baseAddress, value.baseAddress, mode.rawValue) }
        }
        if rc != 0 { throw elementError(rc, "update") }
    }

    /// Removes `key`; throws ``BPFError/keyNotFound(operation:)`` when it is absent.
    @inlinable
    public func delete<K: BPFMapRepresentable>(_ key: K) throws(BPFError) {
        try checkKey(K.self)
        let rc: Int32 = try fd.withFD { fd throws(BPFError) -> Int32 in
            key.withBPFBytes { bpf_map_delete_elem(fd, $0.baseAddress) }
        }
        if rc != 0 { throw elementError(rc, "delete") }
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
