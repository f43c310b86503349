#if os(Linux)
import BPFMaps
import Foundation
import Testing

extension Privileged {
    /// Create, update, lookup, delete, iterate and batch for every map type,
    /// compared with `bpftool map dump -j` of the same pinned map.
    @Suite(.enabled(if: Environment.privileged, Environment.skipReason))
    struct MapTypeTests {
        static let plainTypes: [MapType] = [.hash, .lruHash, .array]

        @Test("hash, LRU hash and array maps match bpftool", arguments: plainTypes)
        func plainMap(type: MapType) throws {
            let pins = try PinDirectory()
            defer { pins.remove() }
            let spec = MapSpec(name: "t_\(type)", type: type, key: UInt32.self, value: UInt64.self,
                               maxEntries: 64, pinning: .byName(directory: pins.path))
            let map = try BPFMap.create(spec)
            defer { map.close() }
            #expect(map.pinPath == pins.path + "/t_\(type)")

            // bpftool sees the same type and sizes.
            let show = try bpftoolShow(map.pinPath!)
            #expect(show["type"] as? String == type.description)
            #expect(show["bytes_key"] as? Int == 4)
            #expect(show["bytes_value"] as? Int == 8)
            #expect(show["max_entries"] as? Int == 64)
            #expect(UInt32(show["id"] as? Int ?? -1) == map.info.id)

            // update + lookup
            for k in UInt32(0)..<10 { try map.update(k, UInt64(k) * 1000 + 7) }
            #expect(try map.lookup(UInt32(3), as: UInt64.self) == 3007)
            try map.update(UInt32(3), UInt64(42), mode: .exist)
            #expect(try map.lookup(UInt32(3), as: UInt64.self) == 42)

            // delete (arrays cannot delete: typed error)
            if type.isArray {
                #expect(throws: BPFError.self) { try map.delete(UInt32(4)) }
            } else {
                try map.delete(UInt32(4))
                #expect(try map.lookup(UInt32(4), as: UInt64.self) == nil)
                #expect(throws: BPFError.keyNotFound(operation: "delete from t_\(type)")) { try map.delete(UInt32(4)) }
            }

            // iteration as a Sequence, compared with bpftool's dump
            let ours = Dictionary(uniqueKeysWithValues: map.entries(key: UInt32.self, value: UInt64.self).map { ($0.key, $0.value) })
            let theirs = try bpftoolDump(map.pinPath!)
            #expect(theirs.count == ours.count)
            for (k, v) in theirs {
                let key = k.withUnsafeBytes { UInt32(bpfBytes: $0) }
                let value = v.withUnsafeBytes { UInt64(bpfBytes: $0) }
                #expect(ours[key] == value, "key \(key)")
            }
            #expect(ours.count == (type.isArray ? 64 : 9))

            // batch: update, lookup, delete
            let batch = (UInt32(20)..<UInt32(40)).map { (key: $0, value: UInt64($0) << 32) }
            try map.updateBatch(batch)
            let dumped = try map.lookupBatch(key: UInt32.self, value: UInt64.self, chunkSize: 7)
            let asDict = Dictionary(uniqueKeysWithValues: dumped.entries.map { ($0.key, $0.value) })
            #expect(dumped.path == .kernelBatch)
            for e in batch { #expect(asDict[e.key] == e.value) }
            #expect(asDict == Dictionary(uniqueKeysWithValues: try bpftoolDump(map.pinPath!).map {
                ($0.key.withUnsafeBytes { UInt32(bpfBytes: $0) }, $0.value.withUnsafeBytes { UInt64(bpfBytes: $0) })
            }))
            if !type.isArray {
                try map.deleteBatch(batch.map(\.key))
                #expect(try map.allKeys(as: UInt32.self).count == 9)
                #expect(try bpftoolDump(map.pinPath!).count == 9)
            }
        }

        @Test("a batch lookup of a full map reads every entry exactly once, whatever the chunk size",
              arguments: [MapType.hash, .array], [16, 63, 64, 65, 4096])
        func fullMapBatchLookup(type: MapType, chunkSize: Int) throws {
            let map = try BPFMap.create(MapSpec(name: "full", type: type, key: UInt32.self, value: UInt64.self, maxEntries: 64))
            defer { map.close() }
            let entries = (UInt32(0)..<64).map { (key: $0, value: UInt64($0) * 3 + 1) }
            try map.updateBatch(entries)
            let (read, path) = try map.lookupBatch(key: UInt32.self, value: UInt64.self, chunkSize: chunkSize)
            #expect(path == .kernelBatch)
            #expect(read.count == 64)
            #expect(Set(read.map(\.key)).count == 64)
            for e in read { #expect(e.value == UInt64(e.key) * 3 + 1) }
        }

        static let perCPUTypes: [MapType] = [.perCPUHash, .perCPUArray, .lruPerCPUHash]

        @Test("per-CPU maps: one value per CPU, summed correctly, as bpftool shows", arguments: perCPUTypes)
        func perCPUMap(type: MapType) throws {
            let pins = try PinDirectory()
            defer { pins.remove() }
            let map = try BPFMap.create(MapSpec(name: "pc", type: type, key: UInt32.self, value: UInt64.self,
                                                maxEntries: 8, pinning: .byName(directory: pins.path)))
            defer { map.close() }
            let cpus = map.possibleCPUs
            #expect(cpus >= 1)
            let values = (0..<cpus).map { UInt64($0 + 1) * 10 }
            try map.updatePerCPU(UInt32(2), values)
            let read = try #require(try map.lookupPerCPU(UInt32(2), as: UInt64.self))
            #expect(read == values)
            #expect(read.reduce(0, +) == UInt64(cpus * (cpus + 1) / 2) * 10)
            #expect(throws: BPFError.self) { try map.lookup(UInt32(2), as: UInt64.self) }
            #expect(throws: BPFError.self) { try map.updatePerCPU(UInt32(2), [UInt64(1)] + values) }

            let dump = try bpftoolDump(map.pinPath!)
            let two = try #require(dump.first { $0.key == bytes(UInt32(2)) })
            #expect(two.value == values.flatMap { bytes($0) })
            let all = try map.perCPUEntries(key: UInt32.self, value: UInt64.self)
            #expect(all.count == dump.count)
            if !type.isArray {
                try map.delete(UInt32(2))
                #expect(try map.lookupPerCPU(UInt32(2), as: UInt64.self) == nil)
            }
        }

        @Test("LPM trie: IPv4 longest-prefix match, iteration, batch and per-element batch")
        func lpmIPv4() throws {
            let pins = try PinDirectory()
            defer { pins.remove() }
            let map = try BPFMap.create(MapSpec(name: "lpm4", type: .lpmTrie, key: IPv4PrefixKey.self, value: UInt32.self,
                                                maxEntries: 16, pinning: .byName(directory: pins.path)))
            defer { map.close() }
            #expect(map.info.flags.contains(.noPrealloc))
            func key(_ a: String, _ len: Int) throws -> IPv4PrefixKey { try #require(IPv4PrefixKey(try addr(a), prefixLength: len)) }
            try map.update(try key("10.0.0.0", 8), UInt32(8))
            try map.update(try key("10.1.0.0", 16), UInt32(16))
            try map.update(try key("10.1.2.0", 24), UInt32(24))
            try map.update(try key("0.0.0.0", 0), UInt32(0))
            #expect(try map.lookup(try key("10.1.2.3", 32), as: UInt32.self) == 24)
            #expect(try map.lookup(try key("10.1.3.3", 32), as: UInt32.self) == 16)
            #expect(try map.lookup(try key("10.200.0.1", 32), as: UInt32.self) == 8)
            #expect(try map.lookup(try key("192.168.0.1", 32), as: UInt32.self) == 0)
            try map.delete(try key("0.0.0.0", 0))
            #expect(try map.lookup(try key("192.168.0.1", 32), as: UInt32.self) == nil)

            let dump = try bpftoolDump(map.pinPath!)
            let ours = Array(map.entries(key: IPv4PrefixKey.self, value: UInt32.self))
            #expect(Set(dump.map(\.key)) == Set(ours.map { bytes($0.key) }))
            #expect(ours.count == 3)

            // Batches: the kernel path where this kernel has batch ops for LPM tries
            // (6.x), and the per-element path, which must give the same result.
            let more = [(key: try key("172.16.0.0", 12), value: UInt32(12)), (key: try key("172.16.5.0", 24), value: UInt32(24))]
            try map.updateBatch(more)
            let viaKernel = try map.lookupBatch(key: IPv4PrefixKey.self, value: UInt32.self)
            let viaElements = try map.lookupBatch(key: IPv4PrefixKey.self, value: UInt32.self, strategy: .perElement)
            #expect(viaElements.path == .perElement)
            #expect(viaKernel.entries.count == 5)
            #expect(Set(viaKernel.entries.map { bytes($0.key) + bytes($0.value) }) == Set(viaElements.entries.map { bytes($0.key) + bytes($0.value) }))
            #expect(try map.lookup(try key("172.16.5.9", 32), as: UInt32.self) == 24)
            #expect(try map.deleteBatch(more.map(\.key), strategy: .perElement) == .perElement)
            #expect(try map.updateBatch(more, strategy: .perElement) == .perElement)
            #expect(try bpftoolDump(map.pinPath!).count == 5)
            try map.deleteBatch(more.map(\.key))
            #expect(try bpftoolDump(map.pinPath!).count == 3)
        }

        @Test("LPM trie: IPv6 longest-prefix match")
        func lpmIPv6() throws {
            let map = try BPFMap.create(MapSpec(name: "lpm6", type: .lpmTrie, key: IPv6PrefixKey.self, value: UInt32.self, maxEntries: 16))
            defer { map.close() }
            func key(_ a: String, _ len: Int) throws -> IPv6PrefixKey { try #require(IPv6PrefixKey(try addr(a), prefixLength: len)) }
            try map.update(try key("fd00::", 8), UInt32(8))
            try map.update(try key("fd00:1::", 32), UInt32(32))
            try map.update(try key("fd00:1:2:3::", 64), UInt32(64))
            try map.update(try key("fd00:1:2:3::42", 128), UInt32(128))
            #expect(try map.lookup(try key("fd00:1:2:3::42", 128), as: UInt32.self) == 128)
            #expect(try map.lookup(try key("fd00:1:2:3::43", 128), as: UInt32.self) == 64)
            #expect(try map.lookup(try key("fd00:1:9::1", 128), as: UInt32.self) == 32)
            #expect(try map.lookup(try key("fd77::1", 128), as: UInt32.self) == 8)
            #expect(try map.lookup(try key("2001:db8::1", 128), as: UInt32.self) == nil)
            // A prefix longer than the address is rejected by the key type, not the kernel.
            #expect(IPv6PrefixKey(try addr("fd00::"), prefixLength: 129) == nil)
            #expect(IPv6PrefixKey(try addr("10.0.0.1"), prefixLength: 8) == nil)
        }

        @Test("the mesh ipcache layout: IPv4 and IPv6 CIDRs in one trie")
        func meshIPCache() throws {
            let map = try BPFMap.create(MapSpec(name: "ipc", type: .lpmTrie, key: mesh_ipcache_key.self, value: mesh_ipcache_value.self, maxEntries: 64))
            defer { map.close() }
            func cidr(_ a: String, _ len: Int) throws -> mesh_ipcache_key { try #require(mesh_ipcache_key(try addr(a), prefixLength: len)) }
            func host(_ a: String) throws -> mesh_ipcache_key { mesh_ipcache_key(host: try addr(a)) }
            try map.update(try cidr("0.0.0.0", 0), mesh_ipcache_value(identity: ReservedIdentity.world, node_id: 0, incarnation: 0))
            try map.update(try cidr("10.244.0.0", 16), mesh_ipcache_value(identity: 300, node_id: 0, incarnation: 0))
            try map.update(try cidr("10.244.1.7", 32), mesh_ipcache_value(identity: 301, node_id: 2, incarnation: 9))
            try map.update(try cidr("fd00:244::", 48), mesh_ipcache_value(identity: 400, node_id: 0, incarnation: 0))
            #expect(try map.lookup(try host("10.244.1.7"), as: mesh_ipcache_value.self)?.identity == 301)
            #expect(try map.lookup(try host("10.244.1.7"), as: mesh_ipcache_value.self)?.incarnation == 9)
            #expect(try map.lookup(try host("10.244.9.9"), as: mesh_ipcache_value.self)?.identity == 300)
            #expect(try map.lookup(try host("8.8.8.8"), as: mesh_ipcache_value.self)?.identity == ReservedIdentity.world)
            #expect(try map.lookup(try host("fd00:244::5"), as: mesh_ipcache_value.self)?.identity == 400)
            // The IPv4 /0 must not match IPv6 addresses: the family is part of the prefix.
            #expect(try map.lookup(try host("2001:db8::1"), as: mesh_ipcache_value.self) == nil)
        }
    }
}
#endif
