import PolicyEngine
import Testing

/// default/{client, server, other} and prod/api, a host and a remote node.
struct CiliumCluster {
    let client = Workload(namespace: "default", name: "client", labels: ["app": "client"], serviceAccount: "client",
                          addresses: [IPAddress(v4: 0x0A00_0001)])
    let server = Workload(namespace: "default", name: "server", labels: ["app": "server"],
                          addresses: [IPAddress(v4: 0x0A00_0002)],
                          namedPorts: [NamedPort(name: "http", port: 80)])
    let other = Workload(namespace: "default", name: "other", labels: ["app": "other"], addresses: [IPAddress(v4: 0x0A00_0003)])
    let api = Workload(namespace: "prod", name: "api", labels: ["app": "client"], addresses: [IPAddress(v4: 0x0A01_0001)])
    let hostIP = IPAddress(v4: 0xC0A8_0001)
    let remoteNodeIP = IPAddress(v4: 0xC0A8_0002)

    var inventory: Inventory {
        Inventory(namespaces: [Namespace(name: "default"), Namespace(name: "prod", labels: ["env": "prod"])],
                  workloads: [client, server, other, api],
                  reservedAddresses: [.host: [hostIP], .remoteNode: [remoteNodeIP]])
    }

    func set(_ yaml: String) throws -> PolicySet {
        let b = try load(yaml)
        return try PolicySet(inventory: inventory, networkPolicies: b.networkPolicies, ciliumPolicies: b.ciliumPolicies)
    }

    func to(_ dst: Workload, from src: Peer, port: UInt16, _ proto: TransportProtocol = .tcp) -> Connection {
        Connection(source: src, destination: .workload(dst), destinationPort: port, protocol: proto)
    }
}

func cnp(_ name: String, ns: String = "default", kind: String = "CiliumNetworkPolicy", _ spec: String) -> String {
    """
    apiVersion: cilium.io/v2
    kind: \(kind)
    metadata:
      name: \(name)
    \(ns.isEmpty ? "" : "  namespace: \(ns)")
    spec:
    \(spec.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n"))
    ---

    """
}

@Suite("CiliumNetworkPolicy")
struct CiliumPolicyTests {
    let c = CiliumCluster()

    static let allowAll = cnp("allow", """
        endpointSelector: {matchLabels: {app: server}}
        ingress:
        - fromEndpoints: [{matchLabels: {app: client}}]
          toPorts:
          - ports: [{port: "80", protocol: TCP}]
            rules: {http: [{method: GET}]}
        - fromEndpoints: [{matchLabels: {app: client}}]
          toPorts: [{ports: [{port: "81", protocol: TCP}]}]
        - fromEndpoints: [{matchLabels: {app: client}}]
        """)

    /// The table of Cilium's deny-policy documentation.
    @Test(arguments: [
        ("", [true, true, true]),
        ("ingressDeny: [{fromEndpoints: [{matchLabels: {app: client}}], toPorts: [{ports: [{port: \"80\", protocol: TCP}]}]}]", [true, false, true]),
        ("ingressDeny: [{fromEndpoints: [{matchLabels: {app: client}}]}]", [false, false, false]),
    ])
    func denyPrecedenceTable(deny: String, expected: [Bool]) throws {
        var yaml = CiliumPolicyTests.allowAll
        if !deny.isEmpty { yaml += cnp("deny", "endpointSelector: {matchLabels: {app: server}}\n" + deny) }
        let s = try c.set(yaml)
        let got = [81, 80, 8080].map { s.decide(c.to(c.server, from: .workload(c.client), port: UInt16($0))).isAllowed }
        #expect(got == expected)
    }

    @Test func denyOnlyPolicyPutsEndpointInDefaultDeny() throws {
        let s = try c.set(cnp("deny-only", """
            endpointSelector: {matchLabels: {app: server}}
            ingressDeny: [{fromEndpoints: [{matchLabels: {app: client}}]}]
            """))
        #expect(s.decide(c.to(c.server, from: .workload(c.client), port: 80)).decidedBy.reason
            == .rule(RuleReference(policy: PolicyReference(kind: .ciliumNetworkPolicy, namespace: "default", name: "deny-only"), section: "ingressDeny", index: 0)))
        let d = s.decide(c.to(c.server, from: .workload(c.other), port: 80))
        #expect(d.verdict == .deny)
        #expect(d.decidedBy.reason == .defaultDeny([PolicyReference(kind: .ciliumNetworkPolicy, namespace: "default", name: "deny-only")]))
    }

    @Test func enableDefaultDenyFalseKeepsOtherTrafficAllowed() throws {
        let s = try c.set(cnp("deny-world-only", """
            endpointSelector: {}
            enableDefaultDeny: {ingress: false, egress: false}
            ingressDeny: [{fromEntities: [world]}]
            """))
        #expect(s.decide(c.to(c.server, from: .workload(c.other), port: 80)).verdict == .allow)
        #expect(s.decide(c.to(c.server, from: .external(ip("203.0.113.9")), port: 80)).verdict == .deny)
        let explicit = try c.set(cnp("isolate", "endpointSelector: {matchLabels: {app: server}}\nenableDefaultDeny: {ingress: true}"))
        #expect(explicit.decide(c.to(c.server, from: .workload(c.client), port: 80)).verdict == .deny)
    }

    @Test func denyTakesPrecedenceAcrossKubernetesAndCilium() throws {
        let knp = """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: allow-all, namespace: default}
            spec:
              podSelector: {}
              ingress: [{}]
            ---

            """
        let s = try c.set(knp + cnp("deny-client", """
            endpointSelector: {matchLabels: {app: server}}
            ingressDeny: [{fromEndpoints: [{matchLabels: {app: client}}]}]
            """))
        #expect(s.decide(c.to(c.server, from: .workload(c.client), port: 80)).verdict == .deny)
        let allowed = s.decide(c.to(c.server, from: .workload(c.other), port: 80))
        #expect(allowed.verdict == .allow)
        #expect(allowed.decidedBy.reason == .rule(RuleReference(policy: PolicyReference(kind: .networkPolicy, namespace: "default", name: "allow-all"), section: "ingress", index: 0)))
    }

    @Test func emptyRuleDeniesAllAndL4OnlyRuleAllowsAllPeers() throws {
        let s = try c.set(cnp("deny-all", "endpointSelector: {matchLabels: {app: server}}\ningress: [{}]"))
        #expect(s.decide(c.to(c.server, from: .workload(c.client), port: 80)).verdict == .deny)
        let l4 = try c.set(cnp("port-80", "endpointSelector: {matchLabels: {app: server}}\ningress: [{toPorts: [{ports: [{port: \"80\"}]}]}]"))
        #expect(l4.decide(c.to(c.server, from: .external(ip("198.51.100.1")), port: 80)).verdict == .allow)
        #expect(l4.decide(c.to(c.server, from: .workload(c.client), port: 80, .udp)).verdict == .allow)
        #expect(l4.decide(c.to(c.server, from: .workload(c.client), port: 81)).verdict == .deny)
    }

    @Test func entities() throws {
        func check(_ entity: String, _ peers: [(Peer, Bool)], sourceLocation: SourceLocation = #_sourceLocation) throws {
            let s = try c.set(cnp("e", "endpointSelector: {matchLabels: {app: server}}\ningress: [{fromEntities: [\(entity)]}]"))
            for (p, want) in peers {
                #expect(s.decide(c.to(c.server, from: p, port: 80)).isAllowed == want, "\(entity) from \(p)", sourceLocation: sourceLocation)
            }
        }
        let world = Peer.external(ip("8.8.8.8"))
        let host = Peer.external(c.hostIP)        // resolved to the host entity by address
        let remote = Peer.external(c.remoteNodeIP)
        let pod = Peer.workload(c.api)
        try check("world", [(world, true), (host, false), (pod, false)])
        try check("cluster", [(world, false), (host, true), (remote, true), (pod, true)])
        try check("host", [(world, false), (host, true), (remote, false), (pod, false)])
        try check("remote-node", [(host, false), (remote, true)])
        try check("all", [(world, true), (host, true), (pod, true)])
        try check("health", [(.reserved(.health, nil), true), (host, false)])
    }

    @Test func cidrSetWithExceptMatchesOnlyOutsideTheCluster() throws {
        let s = try c.set(cnp("cidr", """
            endpointSelector: {matchLabels: {app: server}}
            ingress:
            - fromCIDRSet: [{cidr: 192.0.2.0/24, except: [192.0.2.128/25]}]
            - fromCIDR: [10.0.0.0/8]
            """))
        #expect(s.decide(c.to(c.server, from: .external(ip("192.0.2.1")), port: 80)).verdict == .allow)
        #expect(s.decide(c.to(c.server, from: .external(ip("192.0.2.200")), port: 80)).verdict == .deny)
        #expect(s.decide(c.to(c.server, from: .external(ip("10.9.9.9")), port: 80)).verdict == .allow)
        // A pod inside 10.0.0.0/8 is not selected by a CIDR rule in Cilium.
        #expect(s.decide(c.to(c.server, from: .workload(c.client), port: 80)).verdict == .deny)
    }

    @Test func egressCIDRAndEntities() throws {
        let s = try c.set(cnp("egress", """
            endpointSelector: {matchLabels: {app: client}}
            egress:
            - toCIDR: [203.0.113.0/24]
              toPorts: [{ports: [{port: "443", protocol: TCP}]}]
            - toEndpoints: [{matchLabels: {app: server}}]
            """))
        func out(_ dst: Peer, _ port: UInt16) -> Verdict {
            s.decide(Connection(source: .workload(c.client), destination: dst, destinationPort: port)).verdict
        }
        #expect(out(.external(ip("203.0.113.5")), 443) == .allow)
        #expect(out(.external(ip("203.0.113.5")), 80) == .deny)
        #expect(out(.workload(c.server), 9) == .allow)
        #expect(out(.workload(c.other), 80) == .deny)
    }

    @Test func endpointSelectorsAreScopedToThePolicyNamespace() throws {
        let s = try c.set(cnp("same-ns", """
            endpointSelector: {matchLabels: {app: server}}
            ingress: [{fromEndpoints: [{matchLabels: {app: client}}]}]
            """))
        #expect(s.decide(c.to(c.server, from: .workload(c.client), port: 80)).verdict == .allow)
        #expect(s.decide(c.to(c.server, from: .workload(c.api), port: 80)).verdict == .deny)
        let cross = try c.set(cnp("cross-ns", """
            endpointSelector: {matchLabels: {app: server}}
            ingress: [{fromEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": prod, "io.cilium.k8s.namespace.labels.env": prod}}]}]
            """))
        #expect(cross.decide(c.to(c.server, from: .workload(c.api), port: 80)).verdict == .allow)
        #expect(cross.decide(c.to(c.server, from: .workload(c.client), port: 80)).verdict == .deny)
        let clusterwide = try c.set(cnp("ccnp", ns: "", kind: "CiliumClusterwideNetworkPolicy", """
            endpointSelector: {matchLabels: {app: server}}
            ingress: [{fromEndpoints: [{matchLabels: {app: client}}]}]
            """))
        #expect(clusterwide.decide(c.to(c.server, from: .workload(c.api), port: 80)).verdict == .allow)
    }

    @Test func l7HTTPRules() throws {
        let s = try c.set(cnp("l7", """
            endpointSelector: {matchLabels: {app: server}}
            ingress:
            - fromEndpoints: [{matchLabels: {app: client}}]
              toPorts:
              - ports: [{port: http}]
                rules:
                  http:
                  - {method: "GET|HEAD", path: "/public/.*"}
                  - {method: POST, path: /submit, headers: ["X-Token: s3cret", "X-Trace"], host: "api\\\\.example\\\\.com"}
            - fromEndpoints: [{matchLabels: {app: other}}]
            """))
        func http(_ from: Workload, _ method: String, _ path: String, host: String = "", headers: [String: String] = [:]) -> Decision {
            s.decide(HTTPRequest(connection: c.to(c.server, from: .workload(from), port: 80), method: method, path: path,
                                 host: host, headers: headers))
        }
        let l4 = s.decide(c.to(c.server, from: .workload(c.client), port: 80))
        #expect(l4.verdict == .allow)
        #expect(l4.ingress?.redirectToProxy == true)
        let ingress = try #require(l4.ingress)
        #expect(ingress.summary.hasPrefix("ALLOW by rule ") && ingress.summary.hasSuffix(" [L7 proxy]"))
        #expect(ingress.description == "ingress: \(ingress.summary)")
        #expect(http(c.client, "GET", "/public/index.html").verdict == .allow)
        #expect(http(c.client, "HEAD", "/public/x").verdict == .allow)
        #expect(http(c.client, "GET", "/private").verdict == .deny)
        #expect(http(c.client, "DELETE", "/public/x").verdict == .deny)
        #expect(http(c.client, "POST", "/submit", host: "api.example.com", headers: ["x-token": "s3cret", "x-trace": "1"]).verdict == .allow)
        #expect(http(c.client, "POST", "/submit", host: "api.example.com", headers: ["x-token": "wrong", "x-trace": "1"]).verdict == .deny)
        #expect(http(c.client, "POST", "/submit", host: "apixexample.com", headers: ["x-token": "s3cret", "x-trace": "1"]).verdict == .deny)
        // The L3-only rule for `other` also covers port 80, so the proxy lets all its requests through.
        #expect(http(c.other, "DELETE", "/anything").verdict == .allow)
        let denied = http(c.client, "GET", "/private")
        #expect(denied.decidedBy.layer == .ingress)
        if case .noMatchingHTTPRule = denied.decidedBy.reason {} else { Issue.record("unexpected reason \(denied.decidedBy.reason)") }
    }

    @Test func authenticationRequiredIsCarriedToDecisionAndEntries() throws {
        let s = try c.set(cnp("mutual", """
            endpointSelector: {matchLabels: {app: server}}
            ingress:
            - fromEndpoints: [{matchLabels: {app: client}}]
              authentication: {mode: required}
            - fromEndpoints: [{matchLabels: {app: other}}]
            """))
        #expect(s.decide(c.to(c.server, from: .workload(c.client), port: 80)).ingress?.authentication == .spire)
        #expect(s.decide(c.to(c.server, from: .workload(c.other), port: 80)).ingress?.authentication == .disabled)
        let dp = DatapathCompiler().compile(s)
        let clientID = dp.identity(of: c.client.addresses[0])
        let otherID = dp.identity(of: c.other.addresses[0])
        let map = try #require(dp.endpoints["default/server"])
        #expect(map.entries.contains { $0.key.identity == clientID && $0.value.authType == .spire })
        #expect(map.lookup(direction: .ingress, remoteIdentity: clientID, ipProtocol: 6, port: 80).authType == .spire)
        #expect(map.lookup(direction: .ingress, remoteIdentity: otherID, ipProtocol: 6, port: 80).authType == .disabled)
    }

    @Test func egressL7ToTheWorldAndKubeAPIServerEntity() throws {
        let apiServerIP = ip("172.16.0.1")
        var inv = c.inventory
        inv.reservedAddresses[.kubeAPIServer] = [apiServerIP]
        let b = try load(cnp("egress-l7", """
            endpointSelector: {matchLabels: {app: client}}
            egress:
            - toEntities: [world]
              toPorts:
              - ports: [{port: "80", protocol: TCP}]
                rules: {http: [{method: GET, path: "/v1/.*"}]}
            - toEntities: [kube-apiserver]
              toPorts: [{ports: [{port: "443", protocol: TCP}]}]
            """))
        let s = try PolicySet(inventory: inv, ciliumPolicies: b.ciliumPolicies)
        let out = Connection(source: .workload(c.client), destination: .external(ip("93.184.216.34")), destinationPort: 80)
        #expect(s.decide(out).egress?.redirectToProxy == true)
        #expect(s.decide(HTTPRequest(connection: out, method: "GET", path: "/v1/items")).verdict == .allow)
        #expect(s.decide(HTTPRequest(connection: out, method: "PUT", path: "/v1/items")).verdict == .deny)
        let api = Connection(source: .workload(c.client), destination: .external(apiServerIP), destinationPort: 443)
        #expect(s.decide(api).verdict == .allow)
        #expect(s.decide(Connection(source: .workload(c.client), destination: .external(ip("8.8.8.8")), destinationPort: 443)).verdict == .deny)
        let dp = DatapathCompiler().compile(s)
        #expect(dp.identity(of: apiServerIP) == .kubeAPIServer)
        let map = try #require(dp.endpoints["default/client"])
        #expect(map.lookup(direction: .egress, remoteIdentity: .kubeAPIServer, ipProtocol: 6, port: 443).verdict == .allow)
        #expect(map.lookup(direction: .egress, remoteIdentity: .worldIPv4, ipProtocol: 6, port: 80).proxyPort == 10002)
    }
}
