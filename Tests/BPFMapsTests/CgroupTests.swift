#if os(Linux)
import BPFMaps
import Foundation
import Testing

extension Privileged {
    /// The socket-level programs of `mesh_sock.o` on a real cgroup v2.
    @Suite(.enabled(if: Environment.datapath && Environment.hasCgroup2, Environment.skipReason))
    struct CgroupTests {
        /// A cgroup v2 directory removed after use.
        final class Cgroup {
            let path = Environment.cgroup2 + "/swift-mesh-test-" + uniqueSuffix()
            init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) }
            func remove() { rmdir(path) }
        }

        /// Runs the client of ``VethPair/connect(to:port:timeout:)`` inside `cgroup` (and the client namespace).
        func connectInCgroup(_ cgroup: Cgroup, net: VethPair, host: String, port: UInt16) throws -> Bool {
            let r = try run(["sh", "-c", "echo $$ > \(cgroup.path)/cgroup.procs && exec ip netns exec \(net.clientNamespace) python3 -c \"$0\" \"$1\" \"$2\" \"$3\"",
                             VethPair.clientScript, host, String(port), "1.0"])
            return VethPair.receivedOK(r)
        }

        @Test("connect4/connect6 rewrite a service VIP to its backend; sock_ops counts connections; links detach")
        func serviceRewrite() throws {
            let descriptors = bpfDescriptorCount()
            defer { #expect(bpfDescriptorCount() == descriptors, "links, maps and programs closed") }
            let net = try VethPair()
            defer { net.remove() }
            let cgroup = try Cgroup()
            defer { cgroup.remove() }
            try net.startServer(ports: [8080])

            let object = try BPFObject.open(try Environment.object("mesh_sock"))
            defer { object.close() }
            try object.load()
            #expect(Set(object.programNames) == ["mesh_connect4", "mesh_connect6", "mesh_sockops"])
            let services = try object.map(named: "mesh_services")
            defer { services.close() }
            let stats = try object.map(named: "mesh_sock_stats")
            defer { stats.close() }
            func stat(_ s: SocketStat) throws -> UInt64 { (try stats.lookupPerCPU(s.rawValue, as: UInt64.self) ?? []).reduce(0, +) }

            let vip4 = "10.199.250.1", vip6 = "fd99:250::1"
            try services.update(mesh_service_key(vip: try addr(vip4), port: 80, protocol: 6),
                                mesh_service_value(backend: try addr(net.serverIPv4), port: 8080))
            try services.update(mesh_service_key(vip: try addr(vip6), port: 80, protocol: 6),
                                mesh_service_value(backend: try addr(net.serverIPv6), port: 8080))
            // The VIPs route nowhere by themselves (only the client's /24 and /64 exist).
            #expect(try !connectInCgroup(cgroup, net: net, host: vip4, port: 80))

            let p4 = try object.program(named: "mesh_connect4"), p6 = try object.program(named: "mesh_connect6"), pops = try object.program(named: "mesh_sockops")
            defer { p4.close(); p6.close(); pops.close() }
            let c4 = try CgroupAttachment(program: p4, cgroupPath: cgroup.path)
            let c6 = try CgroupAttachment(program: p6, cgroupPath: cgroup.path)
            let ops = try CgroupAttachment(program: pops, cgroupPath: cgroup.path)
            // bpftool (an independent peer) lists the three programs on the cgroup.
            let listed = try runChecked(["bpftool", "cgroup", "show", cgroup.path])
            #expect(listed.contains("mesh_connect4") && listed.contains("mesh_connect6") && listed.contains("mesh_sockops"), "\(listed)")
            #expect(c4.attachPoint == .connect4)
            #expect(c6.attachPoint == .connect6)
            #expect(ops.attachPoint == .sockOps)

            #expect(try connectInCgroup(cgroup, net: net, host: vip4, port: 80))
            #expect(try stat(.rewrite4) == 1)
            #expect(try connectInCgroup(cgroup, net: net, host: vip6, port: 80))
            #expect(try stat(.rewrite6) == 1)
            #expect(try stat(.activeEstablished) == 2)
            // A connect to a non-service address is untouched.
            #expect(try connectInCgroup(cgroup, net: net, host: net.serverIPv4, port: 8080))
            #expect(try stat(.rewrite4) == 1)
            // A process outside the cgroup is not rewritten.
            #expect(try !net.connect(to: vip4, port: 80))

            c4.close()
            c6.close()
            ops.close()
            #expect(try !runChecked(["bpftool", "cgroup", "show", cgroup.path]).contains("mesh_connect4"))
            #expect(try !connectInCgroup(cgroup, net: net, host: vip4, port: 80))
            #expect(try stat(.activeEstablished) == 3, "sock_ops saw the direct connect only before detaching")
        }

        @Test("attaching to a missing cgroup or at a wrong hook is a typed error")
        func badCgroup() throws {
            let object = try BPFObject.open(try Environment.object("mesh_sock"))
            defer { object.close() }
            try object.load()
            let program = try object.program(named: "mesh_connect4")
            let missing = Environment.cgroup2 + "/nope-\(program.id)"
            #expect(throws: BPFError.fileNotFound(path: missing)) {
                _ = try CgroupAttachment(program: program, cgroupPath: missing)
            }
            let cgroup = try Cgroup()
            defer { cgroup.remove() }
            #expect(throws: BPFError.self) { _ = try CgroupAttachment(program: program, cgroupPath: cgroup.path, attachPoint: .sockOps) }
            // tc refuses a cgroup program on a real interface (EINVAL), and names a missing interface.
            let net = try VethPair()
            defer { net.remove() }
            #expect {
                _ = try TCAttachment(program: program, interface: net.serverInterface, direction: .ingress, networkNamespace: net.serverNamespacePath)
            } throws: { error in
                guard case .invalidArgument = error as? BPFError else { return false }
                return true
            }
            #expect(throws: BPFError.noSuchInterface(name: "lo-nope-\(program.id)")) {
                _ = try TCAttachment(program: program, interface: "lo-nope-\(program.id)", direction: .ingress)
            }
        }
    }
}
#endif
