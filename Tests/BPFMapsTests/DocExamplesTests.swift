#if os(Linux)
import BPFMaps
import Testing

extension Privileged {
    /// The examples of docs/bpf.md, run as written (paths adjusted to test pins).
    @Suite(.enabled(if: Environment.privileged, Environment.skipReason))
    struct DocExamplesTests {
        @Test("maps: spec versus live map")
        func specVersusLiveMap() throws {
            let spec = MapSpec(name: "example", type: .hash, key: UInt32.self, value: UInt64.self, maxEntries: 1024)
            let map = try BPFMap.create(spec)
            defer { map.close() }

            try map.update(UInt32(7), UInt64(700))
            try map.update(UInt32(8), UInt64(800), mode: .noExist)
            let v = try map.lookup(UInt32(7), as: UInt64.self)
            try map.delete(UInt32(8))
            #expect(v == 700)
            #expect(Array(map.entries(key: UInt32.self, value: UInt64.self)).map(\.key) == [7])

            let entries = (0..<1000).map { (key: UInt32($0), value: UInt64($0) * 2) }
            try map.updateBatch(entries)
            let (all, path) = try map.lookupBatch(key: UInt32.self, value: UInt64.self)
            #expect(all.count == 1000 && path == .kernelBatch)
            try map.deleteBatch(all.map(\.key))
            #expect(try map.allKeys(as: UInt32.self).isEmpty)
        }

        @Test("pinning and per-CPU examples")
        func pinningExample() throws {
            let pins = try PinDirectory()
            defer { pins.remove() }
            let shared = MapSpec(name: "mesh_ipcache", type: .lpmTrie, key: mesh_ipcache_key.self,
                                 value: mesh_ipcache_value.self, maxEntries: 65536,
                                 pinning: .byName(directory: pins.path))
            let ipcache = try BPFMap.create(shared)
            defer { ipcache.close() }
            let same = try BPFMap.openPinned(pins.path + "/mesh_ipcache", expecting: shared)
            defer { same.close() }
            #expect(same.info.id == ipcache.info.id)

            let counters = try BPFMap.create(MapSpec(name: "pc", type: .perCPUArray, key: UInt32.self, value: UInt64.self, maxEntries: 4))
            defer { counters.close() }
            try counters.updatePerCPU(UInt32(0), [UInt64](repeating: 1, count: counters.possibleCPUs))
            let total = (try counters.lookupPerCPU(UInt32(0), as: UInt64.self) ?? []).reduce(0, +)
            #expect(total == UInt64(counters.possibleCPUs))
        }

        @Test("datapath programming example")
        func datapathExample() throws {
            let pins = try PinDirectory()
            defer { pins.remove() }
            let object = try BPFObject.open(try Environment.object("mesh_tc"), pinRoot: pins.path)
            try object.load()
            let ipcache = try object.map(named: "mesh_ipcache")
            let policy = try object.map(named: "mesh_policy")
            let config = try object.map(named: "mesh_config")
            object.close()
            defer { ipcache.close(); policy.close(); config.close() }
            try config.update(UInt32(0),
                mesh_endpoint_config(local_identity: 1000, flags: UInt32(MESH_CONFIG_ENFORCE_INGRESS)))
            try ipcache.update(try #require(mesh_ipcache_key(try addr("10.244.1.0"), prefixLength: 24)),
                               mesh_ipcache_value(identity: 2000, node_id: 3, incarnation: 17))
            try policy.update(mesh_policy_key(identity: 2000, direction: .ingress, protocol: 6, port: 8080, portPrefixLength: 13),
                              mesh_policy_value(authType: .spire))
            try policy.update(mesh_policy_key(identity: ReservedIdentity.wildcard, direction: .ingress, protocol: 6, port: 8081),
                              mesh_policy_value(deny: true))
            // The LPM trie answers the way the datapath asks: full-length key, longest prefix.
            let hit = try policy.lookup(mesh_policy_key(identity: 2000, direction: .ingress, protocol: 6, port: 8087), as: mesh_policy_value.self)
            #expect(hit?.auth_type == BPFAuthType.spire.rawValue)
            #expect(try policy.lookup(mesh_policy_key(identity: 2000, direction: .ingress, protocol: 6, port: 8088), as: mesh_policy_value.self) == nil)
            #expect(try ipcache.lookup(mesh_ipcache_key(host: try addr("10.244.1.9")), as: mesh_ipcache_value.self)?.incarnation == 17)
        }
    }
}
#endif
