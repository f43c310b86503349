#if os(Linux)
import BPFMaps
import Foundation
import MeshTestSupport
import Testing

/// Builds Ethernet + IPv4/IPv6 + TCP/UDP/ICMP frames for BPF_PROG_TEST_RUN.
enum Frame {
    /// A frame; for ICMP (`protocol` 1, ICMPv6 for IPv6 addresses) an echo
    /// request, or an echo reply when `echoReply`, with identifier `echoID`.
    static func build(source: IPAddressBytes, destination: IPAddressBytes, protocol proto: UInt8,
                      sourcePort: UInt16, destinationPort: UInt16, echoReply: Bool = false, echoID: UInt16 = 1) -> [UInt8] {
        var f: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1] // dst, src MAC
        var l4: [UInt8]
        switch proto {
        case 6: // TCP SYN, 20 bytes
            l4 = bytesBE(sourcePort) + bytesBE(destinationPort) + [0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]
        case 17: // UDP, 8 bytes + 4 payload
            l4 = bytesBE(sourcePort) + bytesBE(destinationPort) + bytesBE(12) + [0, 0, 1, 2, 3, 4]
        default: // ICMP echo
            l4 = [echoReply ? 0 : 8, 0, 0, 0] + bytesBE(echoID) + [0, 1]
        }
        if source.family == .ipv4 {
            f += [0x08, 0x00]
            let total = UInt16(20 + l4.count)
            f += [0x45, 0] + bytesBE(total) + [0, 1, 0x40, 0, 64, proto, 0, 0] + source.bytes + destination.bytes
        } else {
            f += [0x86, 0xDD]
            let icmp6 = proto == 1 ? UInt8(58) : proto
            if proto == 1 { l4 = [echoReply ? 129 : 128, 0, 0, 0] + bytesBE(echoID) + [0, 1] } // ICMPv6 echo
            f += [0x60, 0, 0, 0] + bytesBE(UInt16(l4.count)) + [icmp6, 64] + source.bytes + destination.bytes
        }
        return f + l4
    }

    static func bytesBE(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
}

extension Privileged {
    /// The tc program, run by the kernel on synthetic packets (BPF_PROG_TEST_RUN),
    /// against a reference model of the documented lookup (PolicyEngine's
    /// `EndpointPolicyMap.lookup` plus mutual auth) on random policies and traffic.
    @Suite(.enabled(if: Environment.privileged, Environment.skipReason))
    struct DatapathModelTests {
        struct EntryKey: Hashable { var identity: UInt32; var direction: UInt8; var proto: UInt8; var port: UInt16; var prefix: Int }
        struct EntryValue { var deny: Bool; var auth: Bool }
        struct Remote { var address: IPAddressBytes; var identity: UInt32; var incarnation: UInt64 }

        enum Expected: Equatable { case allow, dropNoRule, dropDeny, dropAuth, passNoRule }

        /// The reference: longest prefix per identity class, deny first, exact before wildcard,
        /// default per direction, then the auth requirement.
        static func expected(entries: [EntryKey: EntryValue], authorized: Set<[UInt8]>, local: UInt32, enforced: Bool,
                             direction: UInt8, remote: Remote?, proto: UInt8, port: UInt16) -> Expected {
            let identity = remote?.identity ?? ReservedIdentity.world
            func best(_ id: UInt32) -> (EntryKey, EntryValue)? {
                var found: (EntryKey, EntryValue)?
                for (k, v) in entries where k.identity == id && k.direction == direction {
                    let matches: Bool
                    let length: Int
                    if k.proto == 0 {
                        matches = true; length = 0
                    } else {
                        let mask: UInt16 = k.prefix == 0 ? 0 : UInt16.max << (16 - k.prefix)
                        matches = k.proto == proto && (port & mask) == k.port
                        length = 8 + k.prefix
                    }
                    guard matches else { continue }
                    let currentLength = found.map { $0.0.proto == 0 ? 0 : 8 + $0.0.prefix } ?? -1
                    if length > currentLength { found = (k, v) }
                }
                return found
            }
            let exact = identity == 0 ? nil : best(identity)
            let wild = best(0)
            if exact?.1.deny == true || wild?.1.deny == true { return .dropDeny }
            guard let allow = exact ?? wild else { return enforced ? .dropNoRule : .passNoRule }
            if allow.1.auth {
                let key = mesh_auth_key(localIdentity: local, remoteIdentity: identity, remoteNodeID: 0,
                                        authType: .spire, remoteIncarnation: remote?.incarnation ?? 0)
                return authorized.contains(bytes(key)) ? .allow : .dropAuth
            }
            return .allow
        }

        @Test("random policies and traffic: the kernel's verdicts, counters and events match the model", arguments: (UInt64(1)...12).map { $0 })
        func randomPolicies(seed: UInt64) throws {
            var rng = SeededGenerator(seed: seed)
            let pins = try PinDirectory()
            defer { pins.remove() }
            let bpf = try EndpointDatapath(pins: pins)
            defer { bpf.close() }
            let reader = try RingBufferReader(map: bpf.events)
            defer { reader.close() }

            let local: UInt32 = 1000
            let enforceIngress = Bool.random(using: &rng), enforceEgress = Bool.random(using: &rng)
            try bpf.configure(localIdentity: local, defaultDenyIngress: enforceIngress, defaultDenyEgress: enforceEgress)
            let local4 = try addr("10.0.1.1"), local6 = try addr("fd00:1::1")

            // Remotes: some in the ipcache (cluster identities, host, remote-node), some unknown (world).
            let pool: [UInt32] = [256, 257, 258, 259, ReservedIdentity.host, ReservedIdentity.remoteNode]
            var remotes: [Remote] = []
            for i in 1...6 {
                let identity = pool[i - 1]
                let incarnation = UInt64.random(in: 1...1_000_000, using: &rng)
                let a4 = try addr("10.0.0.\(i)"), a6 = try addr("fd00::\(i)")
                for a in [a4, a6] {
                    try bpf.setIdentity(a.description, identity: identity, incarnation: incarnation)
                    remotes.append(Remote(address: a, identity: identity, incarnation: incarnation))
                }
            }
            let unknown = [try addr("192.0.2.7"), try addr("2001:db8::7")]

            // Random entries (the map keeps the last write per key, as the model's dictionary).
            let ports: [UInt16] = [53, 80, 81, 443, 8080, 8081, 8085, 8087, 9090]
            var entries: [EntryKey: EntryValue] = [:]
            for _ in 0..<40 {
                let identity = Bool.random(using: &rng) ? 0 : pool.randomElement(using: &rng)!
                let direction = UInt8.random(in: 0...1, using: &rng)
                let proto: UInt8 = [0, 6, 6, 6, 17, 17].randomElement(using: &rng)!
                let prefix = proto == 0 ? 0 : [0, 8, 13, 14, 15, 16, 16, 16].randomElement(using: &rng)!
                let key = mesh_policy_key(identity: identity, direction: BPFDirection(rawValue: direction)!, protocol: proto,
                                          port: ports.randomElement(using: &rng)!, portPrefixLength: prefix)
                let deny = Int.random(in: 0..<4, using: &rng) == 0
                let auth = !deny && Int.random(in: 0..<4, using: &rng) == 0
                try bpf.policy.update(key, mesh_policy_value(deny: deny, authType: auth ? .spire : .none))
                entries[EntryKey(identity: identity, direction: direction, proto: proto, port: key.port, prefix: key.portPrefixLength)] =
                    EntryValue(deny: deny, auth: auth)
            }
            // The model's view of the map must be the map's content.
            #expect(try bpf.policy.allKeys(as: mesh_policy_key.self).count == entries.count)

            // Authenticate about half the remote incarnations; some of them already expired.
            var authorized = Set<[UInt8]>()
            let now = BootClock.now()
            for r in remotes where Bool.random(using: &rng) {
                let key = mesh_auth_key(localIdentity: local, remoteIdentity: r.identity, remoteNodeID: 0, authType: .spire, remoteIncarnation: r.incarnation)
                let valid = Int.random(in: 0..<3, using: &rng) != 0
                try bpf.auth.authorize(key, until: valid ? now + 3_600_000_000_000 : now - 1)
                if valid { authorized.insert(bytes(key)) } else { authorized.remove(bytes(key)) } // last write wins, as in the map
            }

            var expectedCounts: [BPFVerdict: UInt64] = [:]
            let before = try Dictionary(uniqueKeysWithValues: BPFVerdict.allCases.map { ($0, try bpf.count($0)) })
            _ = try reader.poll(timeoutMilliseconds: 0)
            var sourcePort: UInt16 = 30000
            for _ in 0..<400 {
                let direction = UInt8.random(in: 0...1, using: &rng)
                let known = Int.random(in: 0..<8, using: &rng) != 0
                let remote = known ? remotes.randomElement(using: &rng)! : nil
                let remoteAddress = remote?.address ?? unknown.randomElement(using: &rng)!
                let localAddress = remoteAddress.family == .ipv4 ? local4 : local6
                let proto: UInt8 = [6, 6, 17, 1].randomElement(using: &rng)!
                let port = proto == 1 ? 0 : (Bool.random(using: &rng) ? ports.randomElement(using: &rng)! : UInt16.random(in: 1...9999, using: &rng))
                sourcePort = sourcePort == UInt16.max ? 30000 : sourcePort + 1 // ephemeral ports never collide with service ports
                let frame = direction == 0
                    ? Frame.build(source: remoteAddress, destination: localAddress, protocol: proto, sourcePort: sourcePort, destinationPort: port)
                    : Frame.build(source: localAddress, destination: remoteAddress, protocol: proto, sourcePort: sourcePort, destinationPort: port)
                let program = direction == 0 ? bpf.ingressProgram : bpf.egressProgram
                let result = try program.testRun(packet: frame)
                let want = Self.expected(entries: entries, authorized: authorized, local: local,
                                         enforced: direction == 0 ? enforceIngress : enforceEgress,
                                         direction: direction, remote: remote, proto: proto, port: port)
                let pass = want == .allow || want == .passNoRule
                #expect(result.returnValue == (pass ? 0 : 2),
                        "seed \(seed): dir \(direction) remote \(remoteAddress) id \(remote?.identity ?? 2) proto \(proto) port \(port): expected \(want)")
                let verdict: BPFVerdict = switch want {
                case .allow: .allow
                case .dropNoRule: .dropNoRule
                case .dropDeny: .dropDeny
                case .dropAuth: .dropAuth
                case .passNoRule: .notEnforced
                }
                expectedCounts[verdict, default: 0] += 1
            }
            for v in BPFVerdict.allCases where v != .reply && v != .eventLost {
                #expect(try bpf.count(v) - (before[v] ?? 0) == expectedCounts[v, default: 0], "seed \(seed): counter \(v)")
            }
            let events = try reader.poll(as: mesh_auth_event.self, timeoutMilliseconds: 100)
            #expect(UInt64(events.count) == expectedCounts[.dropAuth, default: 0], "one auth event per auth drop")
            #expect(events.allSatisfy { !authorized.contains(bytes($0.authKey)) && $0.local_identity == local })
        }

        @Test("test runs reject frames too short to be packets")
        func shortFrame() throws {
            let pins = try PinDirectory()
            defer { pins.remove() }
            let bpf = try EndpointDatapath(pins: pins)
            defer { bpf.close() }
            #expect(throws: BPFError.self) { _ = try bpf.ingressProgram.testRun(packet: [1, 2, 3]) }
            // A non-IP frame passes without enforcement.
            let arp = [UInt8](repeating: 0xff, count: 12) + [0x08, 0x06] + [UInt8](repeating: 0, count: 28)
            try bpf.configure(localIdentity: 1, defaultDenyIngress: true, defaultDenyEgress: true)
            #expect(try bpf.ingressProgram.testRun(packet: arp).returnValue == 0)
            #expect(try bpf.count(.notEnforced) == 1)
        }

        @Test("ICMP and ICMPv6 echo: only the reply to an allowed request is a reply", arguments: ["10.0.0.9", "fd00::9"])
        func echoReplies(remoteText: String) throws {
            let pins = try PinDirectory()
            defer { pins.remove() }
            let bpf = try EndpointDatapath(pins: pins)
            defer { bpf.close() }
            let remote = try addr(remoteText)
            let local = try addr(remote.family == .ipv4 ? "10.0.1.1" : "fd00:1::1")
            try bpf.configure(localIdentity: 1000, defaultDenyIngress: true, defaultDenyEgress: true)
            try bpf.setIdentity(remoteText, identity: 300, incarnation: 1)
            let icmp: UInt8 = remote.family == .ipv4 ? 1 : 58
            try bpf.policy.update(mesh_policy_key(identity: 300, direction: .egress, protocol: icmp, portPrefixLength: 0), mesh_policy_value())
            func run(_ program: BPFProgram, _ src: IPAddressBytes, _ dst: IPAddressBytes, reply: Bool, id: UInt16) throws -> UInt32 {
                try program.testRun(packet: Frame.build(source: src, destination: dst, protocol: 1, sourcePort: 0, destinationPort: 0,
                                                        echoReply: reply, echoID: id)).returnValue
            }
            #expect(try run(bpf.egressProgram, local, remote, reply: false, id: 77) == 0, "request allowed by the egress rule")
            #expect(try run(bpf.ingressProgram, remote, local, reply: true, id: 77) == 0, "its reply passes")
            #expect(try bpf.count(.reply) == 1)
            #expect(try run(bpf.ingressProgram, remote, local, reply: true, id: 78) == 2, "a reply nobody asked for does not")
            #expect(try run(bpf.ingressProgram, remote, local, reply: false, id: 77) == 2, "nor a request in the other direction")
        }
    }
}
#endif
