#if os(Linux)
import BPFMaps
import Foundation
import Testing

extension Privileged {
    /// The node agent's view: one workload's datapath loaded, configured, attached and closed.
    @Suite(.enabled(if: Environment.datapath, Environment.skipReason))
    struct EndpointDatapathTests {
        @Test("load, configure, attach both directions, count verdicts, close detaches everything")
        func lifecycle() throws {
            let descriptors = bpfDescriptorCount()
            let net = try VethPair()
            defer { net.remove() }
            let pins = try PinDirectory()
            defer { pins.remove() }
            do {
                let endpoint = try EndpointDatapath(pins: pins)
                defer { endpoint.close() }
                try endpoint.configure(localIdentity: 1000, defaultDenyIngress: true, defaultDenyEgress: false)

                try endpoint.ipcache.update(mesh_ipcache_key(host: try addr("10.0.0.5")), mesh_ipcache_value(identity: 300, node_id: 0, incarnation: 1))
                try endpoint.policy.update(mesh_policy_key(identity: 300, direction: .ingress, protocol: 6, port: 443), mesh_policy_value())
                let local = try addr("10.0.1.1"), peer = try addr("10.0.0.5")
                let allowed = Frame.build(source: peer, destination: local, protocol: 6, sourcePort: 40000, destinationPort: 443)
                let denied = Frame.build(source: peer, destination: local, protocol: 6, sourcePort: 40001, destinationPort: 444)
                #expect(try endpoint.ingressProgram.testRun(packet: allowed).returnValue == 0)
                #expect(try endpoint.ingressProgram.testRun(packet: denied).returnValue == 2)
                // Egress is not in default deny: a miss passes.
                let out = Frame.build(source: local, destination: peer, protocol: 17, sourcePort: 40002, destinationPort: 53)
                #expect(try endpoint.egressProgram.testRun(packet: out).returnValue == 0)
                let counts = try endpoint.verdictCounts()
                #expect(counts[.allow]?.packets == 1)
                #expect(counts[.allow]?.bytes == UInt64(allowed.count))
                #expect(counts[.dropNoRule]?.packets == 1)
                #expect(counts[.notEnforced]?.packets == 1)
                #expect(try endpoint.conntrack.allKeys(as: mesh_ct_key.self).count == 2, "the allowed and the passed flow")

                // Attached (after counting: live traffic on the veth, such as IPv6
                // multicast listener reports, would move the counters).
                try endpoint.attach(interface: net.serverInterface, networkNamespace: net.serverNamespacePath)
                #expect(endpoint.currentAttachments.count == 2)
                for (hook, name) in [("ingress", "mesh_tc_ingress"), ("egress", "mesh_tc_egress")] {
                    let shown = try runChecked(["ip", "netns", "exec", net.serverNamespace, "tc", "filter", "show", "dev", net.serverInterface, hook])
                    #expect(shown.contains(name), "\(hook): \(shown)")
                }

                endpoint.close()
                #expect(endpoint.currentAttachments.isEmpty)
                for hook in ["ingress", "egress"] {
                    let shown = try runChecked(["ip", "netns", "exec", net.serverNamespace, "tc", "filter", "show", "dev", net.serverInterface, hook])
                    #expect(!shown.contains("mesh_tc"), "\(hook) detached")
                }
                #expect(throws: BPFError.self) { try endpoint.policy.update(mesh_policy_key(identity: 1, direction: .ingress, protocol: 0), mesh_policy_value()) }
            }
            #expect(bpfDescriptorCount() == descriptors)
        }
    }
}
#endif
