#if os(Linux)
import BPFMaps
import Foundation
import Testing

extension Privileged {
    /// Bad input gives typed errors, never a crash and never a half-applied change.
    @Suite(.enabled(if: Environment.privileged, Environment.skipReason))
    struct ErrorTests {
        @Test("a key or value of the wrong size is refused before the system call")
        func wrongSizes() throws {
            let map = try BPFMap.create(MapSpec(name: "sizes", type: .hash, key: UInt32.self, value: UInt32.self, maxEntries: 4))
            defer { map.close() }
            #expect(throws: BPFError.keySizeMismatch(expected: 4, actual: 8)) { try map.update(UInt64(1), UInt32(1)) }
            #expect(throws: BPFError.valueSizeMismatch(expected: 4, actual: 8)) { try map.update(UInt32(1), UInt64(1)) }
            #expect(throws: BPFError.keySizeMismatch(expected: 4, actual: 2)) { _ = try map.lookup(UInt16(1), as: UInt32.self) }
            #expect(throws: BPFError.keySizeMismatch(expected: 4, actual: 8)) { try map.delete(UInt64(1)) }
            #expect(throws: BPFError.keySizeMismatch(expected: 4, actual: 24)) { try map.updateBatch([(key: mesh_auth_key(), value: UInt32(1))]) }
            #expect(try map.allKeys(as: UInt32.self).isEmpty, "nothing half-applied")
        }

        @Test("a full map gives mapFull (E2BIG), update modes give keyExists / keyNotFound")
        func fullMapAndModes() throws {
            let map = try BPFMap.create(MapSpec(name: "full", type: .hash, key: UInt32.self, value: UInt32.self, maxEntries: 2))
            defer { map.close() }
            try map.update(UInt32(1), UInt32(1))
            try map.update(UInt32(2), UInt32(2))
            #expect(throws: BPFError.mapFull(operation: "update full")) { try map.update(UInt32(3), UInt32(3)) }
            #expect(throws: BPFError.keyExists(operation: "update full")) { try map.update(UInt32(1), UInt32(9), mode: .noExist) }
            #expect(throws: BPFError.keyNotFound(operation: "update full")) { try map.update(UInt32(7), UInt32(9), mode: .exist) }
            #expect(try map.lookup(UInt32(1), as: UInt32.self) == 1)
            let error = BPFError.mapFull(operation: "update full")
            #expect(error.description.contains("maxEntries"))
        }

        @Test("an out-of-range array index is an invalid argument naming the key")
        func arrayIndex() throws {
            let map = try BPFMap.create(MapSpec(name: "arr", type: .array, key: UInt32.self, value: UInt32.self, maxEntries: 2))
            defer { map.close() }
            do {
                try map.update(UInt32(5), UInt32(1))
                Issue.record("expected an error")
            } catch {
                guard case .invalidArgument(let operation, let argument) = error else { Issue.record("unexpected \(error)"); return }
                #expect(operation == "update arr")
                #expect(argument.contains("key"))
            }
        }

        @Test("an invalid spec is refused with invalidArgument describing the spec")
        func invalidSpec() throws {
            do {
                _ = try BPFMap.create(MapSpec(name: "bad", type: .hash, keySize: 0, valueSize: 4, maxEntries: 1))
                Issue.record("expected an error")
            } catch {
                guard case .invalidArgument(_, let argument) = error else { Issue.record("unexpected \(error)"); return }
                #expect(argument.contains("key size 0"))
            }
            #expect(throws: BPFError.self) {
                _ = try BPFMap.create(MapSpec(name: "lpm", type: .lpmTrie, keySize: 8, valueSize: 4, maxEntries: 1, flags: []))
            }
        }

        @Test("a missing pin is pinNotFound")
        func missingPin() throws {
            let path = "/sys/fs/bpf/swift-mesh-test-missing-" + uniqueSuffix()
            #expect(throws: BPFError.pinNotFound(path: path)) { _ = try BPFMap.openPinned(path) }
        }

        @Test("an incompatible pin is refused, a compatible one reused")
        func incompatiblePin() throws {
            let pins = try PinDirectory()
            defer { pins.remove() }
            let spec = MapSpec(name: "shared", type: .hash, key: UInt32.self, value: UInt64.self, maxEntries: 8, pinning: .byName(directory: pins.path))
            let first = try BPFMap.create(spec)
            defer { first.close() }
            try first.update(UInt32(1), UInt64(11))

            let again = try BPFMap.create(spec)
            defer { again.close() }
            #expect(again.info.id == first.info.id)
            #expect(try again.lookup(UInt32(1), as: UInt64.self) == 11)

            var other = spec
            other.valueSize = 4
            do {
                _ = try BPFMap.create(other)
                Issue.record("expected incompatible")
            } catch {
                guard case .incompatible(let path, let reason) = error else { Issue.record("unexpected \(error)"); return }
                #expect(path == pins.path + "/shared")
                #expect(reason.contains("value size 8 != 4"))
            }
            var lru = spec
            lru.type = .lruHash
            #expect(throws: BPFError.incompatible(path: pins.path + "/shared", reason: "type hash != lru_hash")) {
                _ = try BPFMap.openPinned(pins.path + "/shared", expecting: lru)
            }
        }

        @Test("pinning outside bpffs is notBPFFileSystem; a closed map is closed")
        func pinOutsideBPFFSAndClosed() throws {
            let map = try BPFMap.create(MapSpec(name: "c", type: .hash, key: UInt32.self, value: UInt32.self, maxEntries: 1))
            #expect(throws: BPFError.notBPFFileSystem(path: "/tmp")) { try map.pin(at: "/tmp/swift-mesh-not-bpffs") }
            map.close()
            #expect(map.isClosed)
            #expect(throws: BPFError.closed("map c")) { try map.update(UInt32(1), UInt32(1)) }
        }

        @Test("objects: a missing file, a missing map or program, unloaded access")
        func objectErrors() throws {
            #expect(throws: BPFError.fileNotFound(path: "/nonexistent/x.o")) { _ = try BPFObject.open("/nonexistent/x.o") }
            let path = try Environment.object("mesh_sock")
            let object = try BPFObject.open(path)
            defer { object.close() }
            #expect(throws: BPFError.self) { _ = try object.map(named: "mesh_services") }
            try object.load()
            #expect(throws: BPFError.notFoundInObject(kind: "map", name: "nope", object: path)) { _ = try object.map(named: "nope") }
            #expect(throws: BPFError.notFoundInObject(kind: "program", name: "nope", object: path)) { _ = try object.program(named: "nope") }
        }

        @Test("an object whose pinned map is incompatible is refused before load")
        func objectIncompatiblePin() throws {
            let path = try Environment.object("mesh_tc")
            let pins = try PinDirectory()
            defer { pins.remove() }
            // Something else already pinned as mesh_auth with other sizes.
            let squatter = try BPFMap.create(MapSpec(name: "mesh_auth", type: .hash, key: UInt32.self, value: UInt32.self,
                                                     maxEntries: 4, pinning: .byName(directory: pins.path)))
            defer { squatter.close() }
            let object = try BPFObject.open(path, pinRoot: pins.path)
            defer { object.close() }
            do {
                try object.load()
                Issue.record("expected incompatible")
            } catch {
                guard case .incompatible(let pinPath, let reason) = error else { Issue.record("unexpected \(error)"); return }
                #expect(pinPath == pins.path + "/mesh_auth")
                #expect(reason.contains("key size 4 != 24"))
            }
            #expect(!object.isLoaded)
        }
    }
}
#endif
