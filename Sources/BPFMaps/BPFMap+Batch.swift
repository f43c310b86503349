#if os(Linux)
import CLibBPF
import Glibc
import Logging

/// How a batch operation should be carried out.
public enum BatchStrategy: Sendable, Hashable {
    /// Kernel batch commands where supported, else one system call per element.
    case automatic
    /// Always one system call per element (what ``automatic`` falls back to).
    case perElement
}

/// How a batch operation was carried out.
public enum BatchPath: Sendable, Hashable {
    /// One `BPF_MAP_*_BATCH` system call per chunk.
    case kernelBatch
    /// The kernel or map type has no batch support: one system call per element.
    case perElement
}

extension BPFMap {
    /// The map representations of `items`, back to back.
    @inlinable
    static func pack<S: Sequence>(_ items: S, count: Int) -> [UInt8] where S.Element: BPFMapRepresentable {
        let size = S.Element.bpfSize
        return [UInt8](unsafeUninitializedCapacity: count * size) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            var offset = 0
            for item in items where offset + size <= raw.count {
                item.withBPFBytes { src in
                    UnsafeMutableRawBufferPointer(rebasing: raw[offset..<(offset + size)]).copyMemory(from: src)
                }
                offset += size
            }
            initialized = offset
        }
    }

    @usableFromInline
    static func batchUnsupported(_ rc: Int32) -> Bool {
        // ENOTSUPP (524) / EOPNOTSUPP from map types without batch ops;
        // EINVAL from kernels or map types that reject the command outright.
        let e = -rc
        return e == 524 || e == EOPNOTSUPP || e == EINVAL
    }

    /// Stores all `entries` (`mode` as for ``update(_:_:mode:)``) with `BPF_MAP_UPDATE_BATCH`,
    /// falling back to one update per element where batches are not supported.
    ///
    /// On error, the entries before the failing one are stored (the kernel
    /// processes batches in order); the error names the operation.
    @inlinable @discardableResult
    public func updateBatch<K: BPFMapRepresentable, V: BPFMapRepresentable>(_ entries: [(key: K, value: V)], mode: UpdateMode = .any, strategy: BatchStrategy = .automatic) throws(BPFError) -> BatchPath {
        try checkKey(K.self)
        try checkValue(V.self)
        guard !entries.isEmpty else { return .kernelBatch }
        guard !info.type.isPerCPU else {
            throw .invalidArgument(operation: "updateBatch \(info.name)", argument: "map type \(info.type) is per-CPU: update per CPU")
        }
        if strategy == .perElement {
            for e in entries { try update(e.key, e.value, mode: mode) }
            return .perElement
        }
        let keys = BPFMap.pack(entries.lazy.map(\.key), count: entries.count)
        let values = BPFMap.pack(entries.lazy.map(\.value), count: entries.count)
        let name = info.name
        let rc: Int32 = try fd.withFD { fd throws(BPFError) -> Int32 in
            var count = UInt32(entries.count)
            let rc = keys.withUnsafeBytes { k in values.withUnsafeBytes { v in
                swiftmesh_update_batch(fd, k.baseAddress, v.baseAddress, &count, mode.rawValue)
            } }
            if rc != 0 && !BPFMap.batchUnsupported(rc) {
                throw BPFError.from(errno: -rc, operation: "update batch of \(name) (after \(count) of \(entries.count) entries)", invalid: "keys, values or mode")
            }
            return rc
        }
        if rc == 0 { return .kernelBatch }
        logger.debug("batch update unsupported, per element", metadata: ["map": "\(name)"])
        for e in entries { try update(e.key, e.value, mode: mode) }
        return .perElement
    }

    /// Removes all `keys` with `BPF_MAP_DELETE_BATCH`, falling back to one delete per element.
    @inlinable @discardableResult
    public func deleteBatch<K: BPFMapRepresentable>(_ keys: [K], strategy: BatchStrategy = .automatic) throws(BPFError) -> BatchPath {
        try checkKey(K.self)
        guard !keys.isEmpty else { return .kernelBatch }
        if strategy == .perElement {
            for k in keys { try delete(k) }
            return .perElement
        }
        let raw = BPFMap.pack(keys, count: keys.count)
        let name = info.name
        let rc: Int32 = try fd.withFD { fd throws(BPFError) -> Int32 in
            var count = UInt32(keys.count)
            let rc = raw.withUnsafeBytes { swiftmesh_delete_batch(fd, $0.baseAddress, &count) }
            if rc != 0 && !BPFMap.batchUnsupported(rc) {
                throw BPFError.from(errno: -rc, operation: "delete batch of \(name) (after \(count) of \(keys.count) keys)", invalid: "keys")
            }
            return rc
        }
        if rc == 0 { return .kernelBatch }
        logger.debug("batch delete unsupported, per element", metadata: ["map": "\(name)"])
        for k in keys { try delete(k) }
        return .perElement
    }

    /// Every entry of the map, read with `BPF_MAP_LOOKUP_BATCH` in chunks of
    /// `chunkSize` (at most the map's capacity), falling back to a key walk plus
    /// one lookup per element.
    ///
    /// A hash map is read bucket by bucket and a bucket never straddles two
    /// chunks, so `chunkSize` must exceed the longest bucket (the kernel
    /// answers ENOSPC otherwise); the default is ample.
    @inlinable
    public func lookupBatch<K: BPFMapRepresentable, V: BPFMapRepresentable>(key _: K.Type = K.self, value _: V.Type = V.self, chunkSize: Int = 4096, strategy: BatchStrategy = .automatic) throws(BPFError) -> (entries: [(key: K, value: V)], path: BatchPath) {
        try checkKey(K.self)
        try checkValue(V.self)
        guard !info.type.isPerCPU else {
            throw .invalidArgument(operation: "lookupBatch \(info.name)", argument: "map type \(info.type) is per-CPU: use perCPUEntries")
        }
        guard chunkSize > 0 else { throw .invalidArgument(operation: "lookupBatch \(info.name)", argument: "chunkSize must be positive") }
        let name = info.name
        let capacity = Int(info.maxEntries)
        let chunk = Swift.max(1, Swift.min(chunkSize, capacity))
        let batched: [(key: K, value: V)]? = strategy == .perElement ? nil : try fd.withFD { fd throws(BPFError) -> [(key: K, value: V)]? in
            var out: [(key: K, value: V)] = []
            // Buffers are written by the kernel before they are read: no need to zero them.
            let keys = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk * K.bpfSize, alignment: 8)
            let values = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk * V.bpfSize, alignment: 8)
            // The batch token is opaque: a bucket index for hash maps, the last key
            // (key size) for the generic implementation; 8 bytes at least.
            let tokenSize = Swift.max(8, K.bpfSize)
            var inToken = UnsafeMutableRawBufferPointer.allocate(byteCount: tokenSize, alignment: 8)
            var outToken = UnsafeMutableRawBufferPointer.allocate(byteCount: tokenSize, alignment: 8)
            defer {
                keys.deallocate()
                values.deallocate()
                inToken.deallocate()
                outToken.deallocate()
            }
            var first = true
            while true {
                var count = UInt32(chunk)
                let rc = swiftmesh_lookup_batch(fd, first ? nil : inToken.baseAddress, outToken.baseAddress, keys.baseAddress, values.baseAddress, &count)
                if rc != 0 && -rc != ENOENT {
                    if first && BPFMap.batchUnsupported(rc) { return nil }
                    throw BPFError.from(errno: -rc, operation: "lookup batch of \(name)", invalid: "batch buffers")
                }
                let n = Int(count)
                if first { out.reserveCapacity(rc == 0 ? Swift.min(capacity, 2 * n) : n) }
                for i in 0..<n {
                    out.append((
                        K(bpfBytes: UnsafeRawBufferPointer(rebasing: keys[(i * K.bpfSize)..<((i + 1) * K.bpfSize)])),
                        V(bpfBytes: UnsafeRawBufferPointer(rebasing: values[(i * V.bpfSize)..<((i + 1) * V.bpfSize)]))
                    ))
                }
                // ENOENT: no more entries. A map holds at most maxEntries, so once
                // that many are read another call could only answer ENOENT.
                if rc != 0 || out.count >= capacity { break }
                swap(&inToken, &outToken)
                first = false
            }
            return out
        }
        if let batched { return (batched, .kernelBatch) }
        logger.debug("batch lookup unsupported, per element", metadata: ["map": "\(name)"])
        var out: [(key: K, value: V)] = []
        for k in try allKeys(as: K.self) {
            if let v = try lookup(k, as: V.self) { out.append((k, v)) }
        }
        return (out, .perElement)
    }
}
#endif
