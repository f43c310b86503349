#if os(Linux)
import BPFMaps
import Foundation
import Testing

extension Privileged {
    /// The tc enforcement program on a real veth pair between two network
    /// namespaces, driven by real TCP connects.
    @Suite(.enabled(if: Environment.datapath, Environment.skipReason))
    struct DatapathTests {
        static let tcp: UInt8 = 6
        let local: UInt32 = 1000   // the server workload
        let client: UInt32 = 2000  // the client workload's identity

        @Test("identity policy: default deny, allow, deny first, longest port prefix, counters, detach")
        func identityPolicy() throws {
            let descriptors = bpfDescriptorCount()
            defer { #expect(bpfDescriptorCount() == descriptors, "every map, program and attachment closed its descriptor") }
            let net = try VethPair()
            defer { net.remove() }
            let pins = try PinDirectory()
            defer { pins.remove() }
            let bpf = try EndpointDatapath(pins: pins)
            defer { bpf.close() }
            try net.startServer(ports: [8080, 9090, 9091])
            #expect(try net.connect(to: net.serverIPv4, port: 8080), "reachable before attaching")

            try bpf.configure(localIdentity: local, defaultDenyIngress: true, defaultDenyEgress: false)
            try bpf.setIdentity(net.clientIPv4, identity: client, incarnation: 1)
            let attachment = try TCAttachment(program: bpf.ingressProgram, interface: net.serverInterface, direction: .ingress,
                                              networkNamespace: net.serverNamespacePath)
            #expect(attachment.isAttached)
            // iproute2 (an independent peer) sees the direct-action filter with our program.
            let filters = try runChecked(["ip", "netns", "exec", net.serverNamespace, "tc", "filter", "show", "dev", net.serverInterface, "ingress"])
            #expect(filters.contains("mesh_tc_ingress") && filters.contains("direct-action"), "\(filters)")
            #expect(filters.contains("id \(attachment.programID)"))
            // A second filter with the same handle and priority is refused.
            #expect(throws: BPFError.self) {
                _ = try TCAttachment(program: bpf.ingressProgram, interface: net.serverInterface, direction: .ingress, networkNamespace: net.serverNamespacePath)
            }
            #expect(attachment.isAttached)

            // No entry: default deny.
            let noRule0 = try bpf.count(.dropNoRule)
            #expect(try !net.connect(to: net.serverIPv4, port: 8080))
            #expect(try bpf.count(.dropNoRule) > noRule0)

            // Allow the client identity on 8080 only.
            try bpf.policy.update(mesh_policy_key(identity: client, direction: .ingress, protocol: Self.tcp, port: 8080), mesh_policy_value())
            let allow0 = try bpf.count(.allow)
            #expect(try net.connect(to: net.serverIPv4, port: 8080))
            #expect(try bpf.count(.allow) > allow0)
            #expect(try !net.connect(to: net.serverIPv4, port: 9090))

            // A wildcard-identity deny beats the exact-identity allow (deny first).
            let denyKey = mesh_policy_key(identity: ReservedIdentity.wildcard, direction: .ingress, protocol: Self.tcp, port: 8080)
            try bpf.policy.update(denyKey, mesh_policy_value(deny: true))
            let deny0 = try bpf.count(.dropDeny)
            #expect(try !net.connect(to: net.serverIPv4, port: 8080))
            #expect(try bpf.count(.dropDeny) > deny0)
            try bpf.policy.delete(denyKey)
            #expect(try net.connect(to: net.serverIPv4, port: 8080))

            // Port ranges: allow 9088-9095 (/13) for the client; deny 9091 exactly
            // for it: the longer deny prefix wins on 9091, the range still allows 9090.
            try bpf.policy.update(mesh_policy_key(identity: client, direction: .ingress, protocol: Self.tcp, port: 9088, portPrefixLength: 13), mesh_policy_value())
            #expect(try net.connect(to: net.serverIPv4, port: 9090))
            #expect(try net.connect(to: net.serverIPv4, port: 9091))
            try bpf.policy.update(mesh_policy_key(identity: client, direction: .ingress, protocol: Self.tcp, port: 9091), mesh_policy_value(deny: true))
            #expect(try !net.connect(to: net.serverIPv4, port: 9091))
            #expect(try net.connect(to: net.serverIPv4, port: 9090))

            // Another identity on the same address gets nothing (no wildcard allow).
            try bpf.setIdentity(net.clientIPv4, identity: 2001, incarnation: 2)
            #expect(try !net.connect(to: net.serverIPv4, port: 8080))
            // An "any protocol, any port" wildcard allow opens everything not denied.
            try bpf.policy.update(mesh_policy_key(identity: ReservedIdentity.wildcard, direction: .ingress, protocol: 0), mesh_policy_value())
            #expect(try net.connect(to: net.serverIPv4, port: 8080))
            #expect(try net.connect(to: net.serverIPv4, port: 9091), "the 9091 deny is for identity 2000 only")

            // Within one identity the longest prefix decides (PolicyEngine's lookup;
            // its compiler resolves deny precedence, as Cilium's user space does):
            // "deny all TCP ports" plus "allow 8080" lets exactly 8080 through.
            try bpf.policy.deleteBatch(try bpf.policy.allKeys(as: mesh_policy_key.self))
            try bpf.setIdentity(net.clientIPv4, identity: client, incarnation: 3)
            try bpf.policy.update(mesh_policy_key(identity: client, direction: .ingress, protocol: Self.tcp, portPrefixLength: 0), mesh_policy_value(deny: true))
            try bpf.policy.update(mesh_policy_key(identity: client, direction: .ingress, protocol: Self.tcp, port: 8080), mesh_policy_value())
            let deny1 = try bpf.count(.dropDeny)
            #expect(try net.connect(to: net.serverIPv4, port: 8080))
            #expect(try !net.connect(to: net.serverIPv4, port: 9090))
            #expect(try bpf.count(.dropDeny) > deny1)

            // Without default deny, a miss passes but deny entries still apply
            // (a Cilium deny-only policy does not put the endpoint in default deny).
            try bpf.policy.deleteBatch(try bpf.policy.allKeys(as: mesh_policy_key.self))
            try bpf.configure(localIdentity: local, defaultDenyIngress: false, defaultDenyEgress: false)
            try bpf.policy.update(mesh_policy_key(identity: ReservedIdentity.wildcard, direction: .ingress, protocol: Self.tcp, port: 9090), mesh_policy_value(deny: true))
            let notEnforced0 = try bpf.count(.notEnforced)
            #expect(try net.connect(to: net.serverIPv4, port: 8080))
            #expect(try bpf.count(.notEnforced) > notEnforced0)
            #expect(try !net.connect(to: net.serverIPv4, port: 9090))
            try bpf.configure(localIdentity: local, defaultDenyIngress: true, defaultDenyEgress: false)
            try bpf.policy.deleteBatch(try bpf.policy.allKeys(as: mesh_policy_key.self))

            // Detach: the policy no longer applies at all.
            #expect(try !net.connect(to: net.serverIPv4, port: 8080))
            try attachment.close()
            #expect(!attachment.isAttached)
            #expect(try !runChecked(["ip", "netns", "exec", net.serverNamespace, "tc", "filter", "show", "dev", net.serverInterface, "ingress"]).contains("mesh_tc_ingress"))
            #expect(try net.connect(to: net.serverIPv4, port: 8080))
        }

        @Test("mutual auth: drop + event, then allowed, expired, and no inheritance on IP reuse")
        func mutualAuth() throws {
            let net = try VethPair()
            defer { net.remove() }
            let pins = try PinDirectory()
            defer { pins.remove() }
            let bpf = try EndpointDatapath(pins: pins)
            defer { bpf.close() }
            let reader = try RingBufferReader(map: bpf.events)
            defer { reader.close() }
            try net.startServer(ports: [9090])
            try bpf.configure(localIdentity: local, defaultDenyIngress: true, defaultDenyEgress: false)
            try bpf.setIdentity(net.clientIPv4, identity: client, node: 7, incarnation: 41)
            let attachment = try TCAttachment(program: bpf.ingressProgram, interface: net.serverInterface, direction: .ingress,
                                              networkNamespace: net.serverNamespacePath)
            defer { try? attachment.close() }
            // Any identity may connect to 9090, but only after mutual authentication.
            try bpf.policy.update(mesh_policy_key(identity: ReservedIdentity.wildcard, direction: .ingress, protocol: Self.tcp, port: 9090),
                                  mesh_policy_value(authType: .spire, ruleID: 77))

            // 1. No auth entry: dropped, and the agent is told through the ring buffer.
            _ = try reader.poll(timeoutMilliseconds: 0)
            let auth0 = try bpf.count(.dropAuth)
            #expect(try !net.connect(to: net.serverIPv4, port: 9090))
            #expect(try bpf.count(.dropAuth) > auth0)
            let events = try reader.poll(as: mesh_auth_event.self, timeoutMilliseconds: 1000)
            let event = try #require(events.first)
            #expect(event.type == UInt32(MESH_EVENT_AUTH_REQUIRED))
            #expect(event.local_identity == local)
            #expect(event.remote_identity == client)
            #expect(event.remote_node_id == 7)
            #expect(event.remote_incarnation == 41)
            #expect(event.auth_type == BPFAuthType.spire.rawValue)
            #expect(event.direction == BPFDirection.ingress.rawValue)
            #expect(event.protocol == Self.tcp)
            #expect(event.destinationPort == 9090)
            #expect(event.source == (try addr(net.clientIPv4)))
            #expect(event.destination == (try addr(net.serverIPv4)))

            // 2. The agent authenticated the peer: write the entry the event asked for.
            let key = event.authKey
            try bpf.auth.authorize(key, until: BootClock.now() + 3600 * 1_000_000_000)
            let allow0 = try bpf.count(.allow)
            #expect(try net.connect(to: net.serverIPv4, port: 9090))
            #expect(try bpf.count(.allow) > allow0)

            // 3. Expired (expiration in the boot-clock past): dropped again, new event.
            try bpf.auth.map.update(key, mesh_auth_value(expiration_ns: BootClock.now() - 1), mode: .exist)
            _ = try reader.poll(timeoutMilliseconds: 0)
            #expect(try !net.connect(to: net.serverIPv4, port: 9090))
            #expect(try !reader.poll(as: mesh_auth_event.self, timeoutMilliseconds: 1000).isEmpty)

            // 4. Valid again, then the address is reused by a workload of another
            //    identity: the old entry must not authenticate it.
            try bpf.auth.authorize(key, until: BootClock.now() + 3600 * 1_000_000_000)
            #expect(try net.connect(to: net.serverIPv4, port: 9090))
            try bpf.setIdentity(net.clientIPv4, identity: 3000, node: 7, incarnation: 42)
            _ = try reader.poll(timeoutMilliseconds: 0)
            #expect(try !net.connect(to: net.serverIPv4, port: 9090))
            let reused = try #require(try reader.poll(as: mesh_auth_event.self, timeoutMilliseconds: 1000).first)
            #expect(reused.remote_identity == 3000)
            #expect(reused.remote_incarnation == 42)
            #expect(try bpf.auth.map.lookup(key, as: mesh_auth_value.self) != nil, "the old entry is still there, just unusable")
            #expect(try bpf.auth.isAuthenticated(key))
            #expect(try bpf.auth.revoke(remoteIncarnation: 41) == 1, "the agent drops the old incarnation's entries")
            #expect(try !bpf.auth.isAuthenticated(key))

            // 5. Even a new workload with the *same* identity on the reused address
            //    (new incarnation) needs its own handshake.
            try bpf.setIdentity(net.clientIPv4, identity: client, node: 7, incarnation: 43)
            #expect(try !net.connect(to: net.serverIPv4, port: 9090))
            // ...and after it, it is allowed.
            try bpf.auth.authorize(mesh_auth_key(localIdentity: local, remoteIdentity: client, remoteNodeID: 7, authType: .spire, remoteIncarnation: 43),
                                  until: BootClock.now() + 3600 * 1_000_000_000)
            #expect(try net.connect(to: net.serverIPv4, port: 9090))
            #expect(try bpf.auth.removeExpired() == 0)
        }

        @Test("ring buffer events as an AsyncSequence")
        func eventStream() async throws {
            let net = try VethPair()
            defer { net.remove() }
            let pins = try PinDirectory()
            defer { pins.remove() }
            let bpf = try EndpointDatapath(pins: pins)
            defer { bpf.close() }
            let reader = try RingBufferReader(map: bpf.events)
            defer { reader.close() }
            try net.startServer(ports: [9090])
            try bpf.configure(localIdentity: local, defaultDenyIngress: true, defaultDenyEgress: false)
            try bpf.setIdentity(net.clientIPv4, identity: client, incarnation: 5)
            try bpf.policy.update(mesh_policy_key(identity: client, direction: .ingress, protocol: Self.tcp, port: 9090),
                                  mesh_policy_value(authType: .spire))
            let attachment = try TCAttachment(program: bpf.ingressProgram, interface: net.serverInterface, direction: .ingress,
                                              networkNamespace: net.serverNamespacePath)
            defer { try? attachment.close() }

            let stream = reader.events(as: mesh_auth_event.self, pollIntervalMilliseconds: 50)
            let first = Task { () -> mesh_auth_event? in
                for try await event in stream { return event }
                return nil
            }
            #expect(try !net.connect(to: net.serverIPv4, port: 9090))
            // Bound the wait without asserting on time: cancel the consumer if nothing came.
            let watchdog = Task { try await Task.sleep(for: .seconds(10)); first.cancel() }
            defer { watchdog.cancel() }
            let event = try #require(try await first.value)
            #expect(event.remote_identity == client)
            #expect(event.remote_incarnation == 5)
            #expect(event.destinationPort == 9090)
        }

        @Test("egress policy with conntrack replies, IPv6, on the client's interface")
        func egressAndReplies() throws {
            let net = try VethPair()
            defer { net.remove() }
            let pins = try PinDirectory()
            defer { pins.remove() }
            let bpf = try EndpointDatapath(pins: pins)
            defer { bpf.close() }
            try net.startServer(ports: [8080, 9090])
            // The client workload enforces both directions; replies to its own
            // allowed connections must come back in although no ingress rule exists.
            try bpf.configure(localIdentity: client, defaultDenyIngress: true, defaultDenyEgress: true)
            try bpf.setIdentity(net.serverIPv4, identity: local, incarnation: 1)
            try bpf.setIdentity(net.serverIPv6, identity: local, incarnation: 1)
            let eg = try TCAttachment(program: bpf.egressProgram, interface: net.clientInterface, direction: .egress, networkNamespace: net.clientNamespacePath)
            defer { try? eg.close() }
            let ing = try TCAttachment(program: bpf.ingressProgram, interface: net.clientInterface, direction: .ingress, networkNamespace: net.clientNamespacePath)
            defer { try? ing.close() }

            #expect(try !net.connect(to: net.serverIPv4, port: 8080))
            try bpf.policy.update(mesh_policy_key(identity: local, direction: .egress, protocol: Self.tcp, port: 8080), mesh_policy_value())
            let reply0 = try bpf.count(.reply)
            #expect(try net.connect(to: net.serverIPv4, port: 8080))
            #expect(try bpf.count(.reply) > reply0, "the SYN-ACK came back as a reply")
            #expect(try !net.connect(to: net.serverIPv4, port: 9090))
            #expect(try net.connect(to: net.serverIPv6, port: 8080), "IPv6 through the same ipcache and policy")
            #expect(try !net.connect(to: net.serverIPv6, port: 9090))
            // An ingress rule on the client does not open egress.
            try bpf.policy.update(mesh_policy_key(identity: local, direction: .ingress, protocol: Self.tcp, port: 9090), mesh_policy_value())
            #expect(try !net.connect(to: net.serverIPv4, port: 9090))
        }
    }
}
#endif
