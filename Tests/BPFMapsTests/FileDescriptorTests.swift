#if os(Linux)
import BPFMaps
import Foundation
import Testing

extension Privileged {
    /// Maps, programs, readers and attachments close what they open.
    @Suite(.enabled(if: Environment.privileged, Environment.skipReason))
    struct FileDescriptorTests {
        @Test("no BPF file descriptor outlives its owner")
        func noLeaks() throws {
            let before = bpfDescriptorCount()
            do {
                let pins = try PinDirectory()
                defer { pins.remove() }
                for i in 0..<5 {
                    let m = try BPFMap.create(MapSpec(name: "leak\(i)", type: .hash, key: UInt32.self, value: UInt32.self,
                                                      maxEntries: 4, pinning: .byName(directory: pins.path)))
                    try m.update(UInt32(i), UInt32(i))
                    _ = try BPFMap.openPinned(m.pinPath!)
                    // errors must not leak either
                    _ = try? BPFMap.openPinned(m.pinPath!, expecting: MapSpec(name: "x", type: .array, keySize: 4, valueSize: 4, maxEntries: 1))
                    _ = try? m.update(UInt64(1), UInt32(1))
                }
                let object = try BPFObject.open(try Environment.object("mesh_tc"), pinRoot: pins.path)
                try object.load()
                let events = try object.map(named: "mesh_events")
                let reader = try RingBufferReader(map: events)
                _ = try reader.poll(timeoutMilliseconds: 0)
                let program = try object.program(named: "mesh_tc_ingress")
                #expect(bpfDescriptorCount() > before)
                reader.close()
                program.close()
                object.close()
                #expect(events.info.type == .ringBuffer)
            }
            #expect(bpfDescriptorCount() == before)
        }

        @Test("explicit close releases the descriptor immediately")
        func explicitClose() throws {
            let map = try BPFMap.create(MapSpec(name: "close", type: .array, key: UInt32.self, value: UInt32.self, maxEntries: 1))
            let open = bpfDescriptorCount()
            map.close()
            #expect(bpfDescriptorCount() == open - 1)
            map.close() // idempotent
            #expect(bpfDescriptorCount() == open - 1)
        }
    }
}
#endif
