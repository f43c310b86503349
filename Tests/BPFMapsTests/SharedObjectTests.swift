#if os(Linux)
import BPFMaps
import Foundation
import Testing

extension Privileged {
    /// Several endpoints' objects share the pinned node-wide maps.
    @Suite(.enabled(if: Environment.privileged, Environment.skipReason))
    struct SharedObjectTests {
        @Test("objects with one pin root share ipcache, auth and events; per-endpoint maps stay separate")
        func pinnedByName() throws {
            let pins = try PinDirectory()
            defer { pins.remove() }
            let path = try Environment.object("mesh_tc")
            let a = try BPFObject.open(path, pinRoot: pins.path)
            defer { a.close() }
            #expect(Set(a.mapNames).isSuperset(of: ["mesh_ipcache", "mesh_policy", "mesh_auth", "mesh_config", "mesh_counters", "mesh_events", "mesh_ct"]))
            #expect(Set(a.programNames) == ["mesh_tc_ingress", "mesh_tc_egress"])
            try a.load()
            let b = try BPFObject.open(path, pinRoot: pins.path)
            defer { b.close() }
            try b.load()
            for shared in ["mesh_ipcache", "mesh_auth", "mesh_events"] {
                let ma = try a.map(named: shared), mb = try b.map(named: shared)
                defer { ma.close(); mb.close() }
                #expect(ma.info.id == mb.info.id, "\(shared) is shared")
                #expect(ma.pinPath == pins.path + "/" + shared)
                // and bpftool sees it at the pin
                #expect(try bpftoolShow(pins.path + "/" + shared)["id"] as? Int == Int(ma.info.id))
            }
            let pa = try a.map(named: "mesh_policy"), pb = try b.map(named: "mesh_policy")
            defer { pa.close(); pb.close() }
            #expect(pa.info.id != pb.info.id, "each endpoint has its own policy map")

            // A program pinned next to the maps is what bpftool finds there.
            let program = try a.program(named: "mesh_tc_ingress")
            defer { program.close() }
            try program.pin(at: pins.path + "/mesh_tc_ingress")
            let shown = try runChecked(["bpftool", "prog", "show", "pinned", pins.path + "/mesh_tc_ingress", "-j"])
            let json = try JSONSerialization.jsonObject(with: Data(shown.utf8)) as? [String: Any] ?? [:]
            #expect(json["id"] as? Int == Int(program.id))
            #expect(json["type"] as? String == "sched_cls")

            // An entry written through one object is visible through the other.
            let ia = try a.map(named: "mesh_ipcache"), ib = try b.map(named: "mesh_ipcache")
            defer { ia.close(); ib.close() }
            try ia.update(mesh_ipcache_key(host: try addr("10.1.2.3")), mesh_ipcache_value(identity: 500, node_id: 0, incarnation: 1))
            #expect(try ib.lookup(mesh_ipcache_key(host: try addr("10.1.2.3")), as: mesh_ipcache_value.self)?.identity == 500)
        }

        @Test("an explicitly reused map replaces the object's own")
        func explicitReuse() throws {
            let pins = try PinDirectory()
            defer { pins.remove() }
            let own = try BPFMap.create(MapSpec(name: "mesh_policy", type: .lpmTrie, key: mesh_policy_key.self, value: mesh_policy_value.self, maxEntries: 16384))
            defer { own.close() }
            let object = try BPFObject.open(try Environment.object("mesh_tc"), pinRoot: pins.path)
            defer { object.close() }
            try object.reuse(own, forMapNamed: "mesh_policy")
            let wrong = try BPFMap.create(MapSpec(name: "x", type: .hash, keySize: 16, valueSize: 8, maxEntries: 16384))
            defer { wrong.close() }
            #expect(throws: BPFError.self) { try object.reuse(wrong, forMapNamed: "mesh_config") }
            try object.load()
            let policy = try object.map(named: "mesh_policy")
            defer { policy.close() }
            #expect(policy.info.id == own.info.id)
            #expect(throws: BPFError.self) { try object.reuse(own, forMapNamed: "mesh_policy") }
        }
    }
}
#endif
