import PolicyEngine
import MeshTestSupport
import Testing

@Suite("Identities and datapath entries")
struct DatapathTests {
    @Test func allocatorHandsOutClusterIdentitiesFrom256() {
        var a = IdentityAllocator()
        let web = a.identity(for: ["app": "web"])
        let db = a.identity(for: ["app": "db"])
        #expect(web.rawValue == 256)
        #expect(db.rawValue == 257)
        #expect(a.identity(for: ["app": "web"]) == web)
        #expect(a.labels(of: db) == ["app": "db"])
        #expect(!web.isReserved && SecurityIdentity.host.isReserved)
        #expect([SecurityIdentity.host, .world, .unmanaged, .health, .initializing, .remoteNode, .kubeAPIServer, .ingress].map(\.rawValue) == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func portRangesBecomeAlignedPrefixes() throws {
        let c = CiliumCluster()
        let s = try c.set(cnp("range", """
            endpointSelector: {matchLabels: {app: server}}
            ingress: [{toPorts: [{ports: [{port: "80", endPort: 95, protocol: TCP}, {port: "1", endPort: 65535, protocol: UDP}]}]}]
            """))
        let map = try #require(DatapathCompiler().compile(s).endpoints["default/server"])
        let tcp = map.entries.filter { $0.key.ipProtocol == 6 }.map { "\($0.key.port)/\($0.key.portPrefixLength)" }
        #expect(tcp == ["80/12"])
        let udp = map.entries.filter { $0.key.ipProtocol == 17 }
        // 1-65535 = 1/16, 2/15, 4/14, ..., 32768/1: sixteen prefixes.
        #expect(udp.count == 16)
        for port: UInt16 in [1, 2, 3, 1000, 65535] {
            #expect(map.lookup(direction: .ingress, remoteIdentity: .world, ipProtocol: 17, port: port).verdict == .allow)
        }
        #expect(map.lookup(direction: .ingress, remoteIdentity: .world, ipProtocol: 17, port: 0).verdict == .deny)
        #expect(map.lookup(direction: .ingress, remoteIdentity: .world, ipProtocol: 6, port: 96).verdict == .deny)
    }

    @Test func ipcacheHoldsPodsReservedAndPolicyPrefixes() throws {
        let c = CiliumCluster()
        let s = try c.set(cnp("cidr", """
            endpointSelector: {matchLabels: {app: server}}
            ingress: [{fromCIDRSet: [{cidr: 192.0.2.0/24, except: [192.0.2.128/25]}]}]
            """))
        let dp = DatapathCompiler().compile(s)
        #expect(dp.identity(of: c.hostIP) == .host)
        #expect(dp.identity(of: c.remoteNodeIP) == .remoteNode)
        #expect(dp.identity(of: ip("8.8.8.8")) == .worldIPv4)
        #expect(dp.identity(of: ip("2001:db8::1")) == .worldIPv6)
        let inside = dp.identity(of: ip("192.0.2.1"))
        let except = dp.identity(of: ip("192.0.2.129"))
        #expect(inside.isCIDR && except.isCIDR && inside != except)
        #expect(dp.cidrIdentities[inside] == cidr("192.0.2.0/24"))
        let serverID = dp.identity(of: c.server.addresses[0])
        #expect(serverID.rawValue >= 256 && !serverID.isCIDR)
        let map = try #require(dp.endpoints["default/server"])
        #expect(map.identity == serverID)
        #expect(map.ingressEnforced && !map.egressEnforced)
        #expect(map.lookup(direction: .ingress, remoteIdentity: inside, ipProtocol: 6, port: 1).verdict == .allow)
        #expect(map.lookup(direction: .ingress, remoteIdentity: except, ipProtocol: 6, port: 1).verdict == .deny)
    }

    @Test func lookupPrefersDenyThenExactIdentityThenLongestPrefix() throws {
        let c = CiliumCluster()
        let s = try c.set(cnp("mix", """
            endpointSelector: {matchLabels: {app: server}}
            ingress:
            - fromEndpoints: [{matchLabels: {app: client}}]
            - toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [{method: GET}]}}]
            ingressDeny:
            - fromEntities: [world]
              toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
            """))
        let dp = DatapathCompiler(ingressProxyPort: 4000).compile(s)
        let map = try #require(dp.endpoints["default/server"])
        let client = dp.identity(of: c.client.addresses[0])
        let other = dp.identity(of: c.other.addresses[0])
        // The exact identity's L3 entry covers port 22; the wildcard L7 entry on 8080 is
        // folded into a client-specific 8080 entry that keeps the redirect.
        #expect(map.lookup(direction: .ingress, remoteIdentity: client, ipProtocol: 6, port: 22).verdict == .allow)
        let l7 = map.lookup(direction: .ingress, remoteIdentity: client, ipProtocol: 6, port: 8080)
        #expect(l7.verdict == .allow && l7.proxyPort == 4000)
        #expect(l7.entry?.key.identity == client)
        #expect(map.lookup(direction: .ingress, remoteIdentity: other, ipProtocol: 6, port: 8080).proxyPort == 4000)
        #expect(map.lookup(direction: .ingress, remoteIdentity: other, ipProtocol: 6, port: 22).verdict == .deny)
        let world = map.lookup(direction: .ingress, remoteIdentity: .worldIPv4, ipProtocol: 6, port: 8080)
        #expect(world.verdict == .deny && world.entry?.value.isDeny == true)
        // Entries name the rule that decides them, for datapath events.
        let mix = PolicyReference(kind: .ciliumNetworkPolicy, namespace: "default", name: "mix")
        #expect(dp.rule(id: world.entry?.value.ruleID ?? 0) == RuleReference(policy: mix, section: "ingressDeny", index: 0))
        #expect(dp.rule(id: l7.entry?.value.ruleID ?? 0) == RuleReference(policy: mix, section: "ingress", index: 0))
        #expect(dp.rule(id: 0) == nil)
    }

    @Test func partialIPBlockOverAnIdentityIsReported() throws {
        let a = Workload(namespace: "ns", name: "a", labels: ["app": "same"], addresses: [ip("10.0.0.1")])
        let b = Workload(namespace: "ns", name: "b", labels: ["app": "same"], addresses: [ip("10.0.1.1")])
        let server = Workload(namespace: "ns", name: "server", labels: ["app": "server"], addresses: [ip("10.0.2.1")])
        let policy = NetworkPolicy(namespace: "ns", name: "one-pod", podSelector: LabelSelector(matchLabels: ["app": "server"]),
                                   ingress: [.init(peers: [.ipBlock(cidr: cidr("10.0.0.1/32"), except: [])])])
        let set = try PolicySet(inventory: Inventory(workloads: [a, b, server]), networkPolicies: [policy])
        let dp = DatapathCompiler().compile(set)
        let shared = dp.identity(of: ip("10.0.0.1"))
        #expect(dp.identity(of: ip("10.0.1.1")) == shared)
        #expect(dp.impreciseIdentities == [shared])
        #expect(dp.diagnostics.count == 1)
        // decide() still answers per address.
        #expect(set.decide(Connection(source: .workload(a), destination: .workload(server), destinationPort: 80)).verdict == .allow)
        #expect(set.decide(Connection(source: .workload(b), destination: .workload(server), destinationPort: 80)).verdict == .deny)
    }

    /// Random Kubernetes and Cilium policies and random traffic: looking the
    /// compiled entries up as the datapath does must give what `decide` gives.
    @Test func datapathLookupAgreesWithDecide() throws {
        var rng = SeededGenerator(seed: 0xC111_0DA7)
        func pick<T>(_ a: [T]) -> T { a[Int.random(in: 0..<a.count, using: &rng)] }
        func chance(_ n: Int) -> Bool { Int.random(in: 0..<n, using: &rng) == 0 }

        let apps = ["web", "db", "api"]
        var pods: [Workload] = []
        for n in 0..<2 {
            for p in 0..<5 {
                pods.append(Workload(namespace: "n\(n)", name: "p\(p)", labels: ["app": apps[p % 3], "tier": p < 3 ? "1" : "2"],
                                     addresses: [IPAddress(v4: 0x0A00_0001 | UInt32(n) << 16 | UInt32(p) << 8)],
                                     namedPorts: [NamedPort(name: "http", port: p == 4 ? 8080 : 80), NamedPort(name: "dns", port: 53, protocol: .udp)]))
            }
        }
        let inventory = Inventory(namespaces: [Namespace(name: "n0", labels: ["team": "a"]), Namespace(name: "n1", labels: ["team": "b"])],
                                  workloads: pods, reservedAddresses: [.host: [ip("192.168.0.1")], .remoteNode: [ip("192.168.0.2")]])
        let externals = ["203.0.113.1", "203.0.113.130", "203.0.113.200", "198.51.100.7", "8.8.8.8", "10.99.0.1", "2001:db8::1"].map(ip)
        let cidrPeers: [(CIDR, [CIDR])] = [
            (cidr("10.0.0.0/8"), [cidr("10.1.0.0/16")]), (cidr("203.0.113.0/24"), [cidr("203.0.113.128/25")]),
            (cidr("10.0.0.0/16"), []), (cidr("0.0.0.0/0"), [cidr("8.8.8.0/24")]), (cidr("2001:db8::/32"), []),
        ]
        func selector() -> LabelSelector {
            pick([LabelSelector(), LabelSelector(matchLabels: ["app": pick(apps)]),
                  LabelSelector(matchExpressions: [.init(key: "tier", operator: pick([.in, .notIn]), values: ["1"])])])
        }
        func knpPorts() -> [NetworkPolicy.Port] {
            pick([[], [.init(protocol: .tcp, port: .number(80))], [.init(protocol: .tcp, port: .number(80), endPort: 95)],
                  [.init(protocol: .tcp, port: .named("http"))], [.init(protocol: .udp)], [.init(protocol: .udp, port: .named("dns"))]])
        }
        func ciliumPorts(allowL7: Bool) -> [CiliumNetworkPolicy.PortRule]? {
            if chance(3) { return nil }
            let ports = pick([[CiliumNetworkPolicy.PortProtocol(port: 80, protocol: .tcp)],
                              [.init(port: 80, endPort: 95)], [.init(namedPort: "http", protocol: .tcp)],
                              [.init(port: 0, protocol: .udp)], [.init(port: 443, protocol: .tcp), .init(port: 53)]])
            let l7 = allowL7 && chance(3) && !ports.contains { $0.port == 0 && $0.namedPort == nil }
            return [.init(ports: ports, http: l7 ? [.init(method: "GET")] : nil)]
        }
        func ciliumRule(deny: Bool) -> CiliumNetworkPolicy.Rule {
            var r = CiliumNetworkPolicy.Rule()
            switch Int.random(in: 0..<5, using: &rng) {
            case 0: r.endpoints = [selector()]
            case 1: r.entities = [pick(CiliumNetworkPolicy.Entity.allCases)]
            case 2: r.cidrs = [pick(cidrPeers)].map { .init(cidr: $0.0, except: $0.1) }
            case 3: r.endpoints = [LabelSelector(matchLabels: ["io.kubernetes.pod.namespace": pick(["n0", "n1"])])]
            default: break
            }
            r.toPorts = ciliumPorts(allowL7: !deny)
            if !deny && chance(4) { r.authentication = .required }
            return r
        }
        func knpRule() -> NetworkPolicy.Rule {
            var peers: [NetworkPolicy.Peer] = []
            for _ in 0..<Int.random(in: 0...2, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: peers.append(.pods(podSelector: selector(), namespaceSelector: nil))
                case 1: peers.append(.pods(podSelector: .everything, namespaceSelector: LabelSelector(matchLabels: ["team": pick(["a", "b"])])))
                case 2: peers.append(.pods(podSelector: selector(), namespaceSelector: LabelSelector()))
                default:
                    let c = pick(cidrPeers + [(CIDR(host: pick(pods).addresses[0]), [])])
                    peers.append(.ipBlock(cidr: c.0, except: c.1))
                }
            }
            return NetworkPolicy.Rule(peers: peers, ports: knpPorts())
        }

        var compared = 0, skipped = 0, denied = 0, redirected = 0, authenticated = 0
        for round in 0..<60 {
            var knps: [NetworkPolicy] = []
            var cnps: [CiliumNetworkPolicy] = []
            for i in 0..<Int.random(in: 0...2, using: &rng) {
                let types: Set<NetworkPolicy.PolicyType> = pick([[.ingress], [.egress], [.ingress, .egress]])
                knps.append(NetworkPolicy(namespace: pick(["n0", "n1"]), name: "k\(i)", podSelector: selector(), policyTypes: types,
                                          ingress: (0..<Int.random(in: 0...2, using: &rng)).map { _ in knpRule() },
                                          egress: (0..<Int.random(in: 0...2, using: &rng)).map { _ in knpRule() }))
            }
            for i in 0..<Int.random(in: 1...3, using: &rng) {
                var p = CiliumNetworkPolicy(namespace: pick(["n0", "n1", ""]), name: "c\(i)", endpointSelector: selector())
                if !chance(3) { p.ingress = (0..<Int.random(in: 1...3, using: &rng)).map { _ in ciliumRule(deny: false) } }
                if chance(2) { p.egress = (0..<Int.random(in: 1...2, using: &rng)).map { _ in ciliumRule(deny: false) } }
                if chance(3) { p.ingressDeny = [ciliumRule(deny: true)] }
                if chance(4) { p.egressDeny = [ciliumRule(deny: true)] }
                if chance(4) { p.enableDefaultDeny = .init(ingress: Bool.random(using: &rng), egress: Bool.random(using: &rng)) }
                cnps.append(p)
            }
            let set = try PolicySet(inventory: inventory, networkPolicies: knps, ciliumPolicies: cnps)
            let dp = DatapathCompiler().compile(set)
            for _ in 0..<80 {
                let src: Peer = chance(3) ? .external(pick(externals + [ip("192.168.0.1"), ip("192.168.0.2")])) : .workload(pick(pods))
                let dst = pick(pods)
                let c = Connection(source: src, destination: .workload(dst), destinationPort: pick([53, 80, 81, 88, 95, 96, 443, 8080]),
                                   protocol: pick(TransportProtocol.allCases))
                let d = set.decide(c)
                let proto = c.protocol.ipProtocolNumber
                // Ingress at the destination.
                let srcID = dp.identity(of: src.address!)
                if dp.impreciseIdentities.contains(srcID) { skipped += 1 } else {
                    let got = try #require(dp.endpoints[dst.key]).lookup(direction: .ingress, remoteIdentity: srcID, ipProtocol: proto, port: c.destinationPort)
                    let want = try #require(d.ingress)
                    #expect(got.verdict == want.verdict && (got.proxyPort != 0) == want.redirectToProxy && got.authType == want.authentication,
                            "round \(round) ingress \(src) -> \(dst.key) \(c.destinationPort)/\(c.protocol): datapath \(got) vs \(want)\nKNP \(knps)\nCNP \(cnps)")
                    compared += 1
                    if want.verdict == .deny { denied += 1 }
                    if want.redirectToProxy { redirected += 1 }
                    if want.authentication != .disabled { authenticated += 1 }
                }
                // Egress at the source.
                if let sw = src.workload {
                    let dstID = dp.identity(of: dst.addresses[0])
                    if dp.impreciseIdentities.contains(dstID) { skipped += 1; continue }
                    let got = try #require(dp.endpoints[sw.key]).lookup(direction: .egress, remoteIdentity: dstID, ipProtocol: proto, port: c.destinationPort)
                    let want = try #require(d.egress)
                    #expect(got.verdict == want.verdict && (got.proxyPort != 0) == want.redirectToProxy && got.authType == want.authentication,
                            "round \(round) egress \(sw.key) -> \(dst.key) \(c.destinationPort)/\(c.protocol): datapath \(got) vs \(want)\nKNP \(knps)\nCNP \(cnps)")
                    compared += 1
                }
            }
            // Egress to addresses outside the cluster.
            for _ in 0..<20 {
                let sw = pick(pods)
                let dst = pick(externals)
                let c = Connection(source: .workload(sw), destination: .external(dst), destinationPort: pick([53, 80, 443]), protocol: pick([.tcp, .udp]))
                let want = try #require(set.decide(c).egress)
                let got = try #require(dp.endpoints[sw.key]).lookup(direction: .egress, remoteIdentity: dp.identity(of: dst),
                                                                    ipProtocol: c.protocol.ipProtocolNumber, port: c.destinationPort)
                #expect(got.verdict == want.verdict && (got.proxyPort != 0) == want.redirectToProxy && got.authType == want.authentication,
                        "round \(round) egress \(sw.key) -> \(dst) \(c.destinationPort)/\(c.protocol): datapath \(got) vs \(want)\nKNP \(knps)\nCNP \(cnps)")
                compared += 1
            }
        }
        // The generator must exercise every outcome, and imprecision must stay rare.
        #expect(compared > 8000)
        #expect(skipped * 10 < compared)
        #expect(denied > 500 && redirected > 50 && authenticated > 50)
    }
}
