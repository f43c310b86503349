import PolicyEngine
import MeshTestSupport
import Testing

/// A small mesh: foo/httpbin (the server), foo/sleep, bar/sleep, and
/// legacy/client without mTLS.
struct IstioMesh {
    let httpbin = Workload(namespace: "foo", name: "httpbin", labels: ["app": "httpbin", "version": "v1"],
                           serviceAccount: "httpbin", addresses: [IPAddress(v4: 0x0A00_0001)])
    let fooSleep = Workload(namespace: "foo", name: "sleep", labels: ["app": "sleep"], serviceAccount: "sleep",
                            addresses: [IPAddress(v4: 0x0A00_0002)])
    let barSleep = Workload(namespace: "bar", name: "sleep", labels: ["app": "sleep"], serviceAccount: "sleep",
                            addresses: [IPAddress(v4: 0x0A01_0002)])
    let legacy = Workload(namespace: "legacy", name: "client", labels: ["app": "client"],
                          addresses: [IPAddress(v4: 0x0A02_0003)])

    var inventory: Inventory {
        Inventory(workloads: [httpbin, fooSleep, barSleep, legacy],
                  services: [Service(namespace: "foo", name: "httpbin", selector: ["app": "httpbin"])])
    }

    func set(_ yaml: String, providers: [String: any CustomAuthorizationProvider] = [:]) throws -> PolicySet {
        let b = try load(yaml)
        return try PolicySet(inventory: inventory, authorizationPolicies: b.authorizationPolicies,
                             options: .init(customProviders: providers))
    }

    func conn(_ from: Workload, port: UInt16 = 8000, mtls: Bool = true, sni: String? = nil) -> Connection {
        Connection(source: .workload(from), destination: .workload(httpbin), destinationPort: port,
                   sourcePrincipal: mtls ? from.principal(trustDomain: "cluster.local") : nil, sni: sni)
    }

    func req(_ from: Workload, _ method: String = "GET", _ path: String = "/", port: UInt16 = 8000, mtls: Bool = true,
             host: String = "httpbin.foo", headers: [String: String] = [:], jwt: String? = nil,
             claims: [String: [String]] = [:]) -> HTTPRequest {
        HTTPRequest(connection: conn(from, port: port, mtls: mtls), method: method, path: path, host: host,
                    headers: headers, requestPrincipal: jwt, claims: claims)
    }
}

func policy(_ name: String, ns: String = "foo", _ spec: String) -> String {
    """
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata:
      name: \(name)
      namespace: \(ns)
    spec:
    \(spec.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n"))
    ---

    """
}

@Suite("Istio AuthorizationPolicy")
struct IstioAuthorizationTests {
    let mesh = IstioMesh()

    func ref(_ name: String, _ index: Int, ns: String = "foo") -> LayerDecision.Reason {
        .rule(RuleReference(policy: PolicyReference(kind: .authorizationPolicy, namespace: ns, name: name), section: "rules", index: index))
    }

    @Test func noAllowPolicyMeansAllow() throws {
        let s = try mesh.set(policy("deny-bar", """
            action: DENY
            rules: [{from: [{source: {namespaces: [bar]}}]}]
            """))
        let d = s.decide(mesh.conn(mesh.fooSleep))
        #expect(d.verdict == .allow)
        #expect(d.authorization?.reason == .noAllowPolicy)
        #expect(s.decide(mesh.conn(mesh.barSleep)).decidedBy.reason == ref("deny-bar", 0))
    }

    @Test func unmatchedAllowMeansDeny() throws {
        let s = try mesh.set(policy("allow-foo", """
            selector: {matchLabels: {app: httpbin}}
            rules:
            - from: [{source: {namespaces: [other]}}]
            - from: [{source: {namespaces: [foo]}}]
            """))
        let ok = s.decide(mesh.conn(mesh.fooSleep))
        #expect(ok.verdict == .allow)
        #expect(ok.decidedBy.reason == ref("allow-foo", 1))
        let no = s.decide(mesh.conn(mesh.barSleep))
        #expect(no.verdict == .deny)
        #expect(no.decidedBy.reason == .noMatchingAllow([PolicyReference(kind: .authorizationPolicy, namespace: "foo", name: "allow-foo")]))
    }

    @Test func denyIsEvaluatedBeforeAllow() throws {
        let s = try mesh.set(policy("allow-all", "rules: [{}]") + policy("deny-sleep", """
            action: DENY
            rules: [{from: [{source: {principals: [cluster.local/ns/foo/sa/sleep]}}]}]
            """))
        #expect(s.decide(mesh.conn(mesh.fooSleep)).decidedBy.reason == ref("deny-sleep", 0))
        #expect(s.decide(mesh.conn(mesh.barSleep)).decidedBy.reason == ref("allow-all", 0))
    }

    @Test func emptySpecDeniesAllAndEmptyRuleAllowsAll() throws {
        let denyAll = try mesh.set(policy("deny-all", "{}"))
        #expect(denyAll.decide(mesh.conn(mesh.fooSleep)).verdict == .deny)
        #expect(denyAll.decide(mesh.req(mesh.fooSleep)).verdict == .deny)
        let allowAll = try mesh.set(policy("allow-all", "rules: [{}]"))
        #expect(allowAll.decide(mesh.conn(mesh.legacy, mtls: false)).verdict == .allow)
    }

    @Test func selectorAndNamespaceScoping() throws {
        let s = try mesh.set(policy("other-app", "selector: {matchLabels: {app: other}}\nrules: []")
            + policy("bar-ns", ns: "bar", "{}"))
        // Neither policy applies to foo/httpbin.
        #expect(s.decide(mesh.conn(mesh.fooSleep)).authorization?.reason == .noAllowPolicy)
        let root = try mesh.set(policy("mesh-wide", ns: "istio-system", "{}"))
        #expect(root.decide(mesh.conn(mesh.fooSleep)).verdict == .deny)
    }

    @Test func principalPrefixSuffixPresence() throws {
        let s = try mesh.set(policy("p", """
            rules:
            - from: [{source: {principals: ["cluster.local/ns/bar/*"]}}]
            - from: [{source: {principals: ["*/sa/httpbin"]}}]
            """))
        #expect(s.decide(mesh.conn(mesh.barSleep)).decidedBy.reason == ref("p", 0))
        #expect(s.decide(mesh.conn(mesh.fooSleep)).verdict == .deny)
        let presence = try mesh.set(policy("any-authenticated", "rules: [{from: [{source: {principals: [\"*\"]}}]}]"))
        #expect(presence.decide(mesh.conn(mesh.fooSleep)).verdict == .allow)
        #expect(presence.decide(mesh.conn(mesh.legacy, mtls: false)).verdict == .deny)
    }

    @Test func everyNotFieldAtL4() throws {
        let cases: [(String, Workload, Bool)] = [
            ("notPrincipals: [cluster.local/ns/bar/sa/sleep]", mesh.barSleep, false),
            ("notPrincipals: [cluster.local/ns/bar/sa/sleep]", mesh.fooSleep, true),
            ("notNamespaces: [bar]", mesh.barSleep, false),
            ("notNamespaces: [bar]", mesh.fooSleep, true),
            ("notIpBlocks: [10.1.0.0/16]", mesh.barSleep, false),
            ("notIpBlocks: [10.1.0.0/16]", mesh.fooSleep, true),
            ("notServiceAccounts: [bar/sleep]", mesh.barSleep, false),
            ("notServiceAccounts: [sleep]", mesh.fooSleep, false),
            ("notServiceAccounts: [sleep]", mesh.barSleep, true),
            ("notPrincipals: [\"*\"]", mesh.legacy, true),
            ("notPrincipals: [\"*\"]", mesh.fooSleep, false),
        ]
        for (source, from, allowed) in cases {
            let s = try mesh.set(policy("not", "rules: [{from: [{source: {\(source)}}]}]"))
            let d = s.decide(mesh.conn(from, mtls: from != mesh.legacy))
            #expect(d.isAllowed == allowed, "\(source) from \(from.key): \(d)")
        }
        let ports = try mesh.set(policy("notports", "rules: [{to: [{operation: {notPorts: [\"9000\"]}}]}]"))
        #expect(ports.decide(mesh.conn(mesh.fooSleep, port: 8000)).verdict == .allow)
        #expect(ports.decide(mesh.conn(mesh.fooSleep, port: 9000)).verdict == .deny)
    }

    @Test func everyNotFieldAtL7() throws {
        let cases: [(String, HTTPRequest, Bool)] = [
            ("to: [{operation: {notMethods: [DELETE]}}]", mesh.req(mesh.fooSleep, "GET"), true),
            ("to: [{operation: {notMethods: [DELETE]}}]", mesh.req(mesh.fooSleep, "DELETE"), false),
            ("to: [{operation: {notPaths: [/admin*]}}]", mesh.req(mesh.fooSleep, "GET", "/admin/x"), false),
            ("to: [{operation: {notPaths: [/admin*]}}]", mesh.req(mesh.fooSleep, "GET", "/status?admin"), true),
            ("to: [{operation: {notHosts: [\"*.internal\"]}}]", mesh.req(mesh.fooSleep, host: "db.internal"), false),
            ("to: [{operation: {notHosts: [\"*.internal\"]}}]", mesh.req(mesh.fooSleep, host: "httpbin.foo:8000"), true),
            ("from: [{source: {notRequestPrincipals: [\"https://evil/*\"]}}]", mesh.req(mesh.fooSleep, jwt: "https://evil/u1"), false),
            ("from: [{source: {notRequestPrincipals: [\"https://evil/*\"]}}]", mesh.req(mesh.fooSleep, jwt: "https://good/u1"), true),
            ("from: [{source: {notRemoteIpBlocks: [10.0.0.0/24]}}]", mesh.req(mesh.fooSleep), false),
            ("from: [{source: {notRemoteIpBlocks: [10.0.0.0/24]}}]", mesh.req(mesh.barSleep), true),
            ("when: [{key: \"request.headers[x-env]\", notValues: [prod]}]", mesh.req(mesh.fooSleep, headers: ["X-Env": "prod"]), false),
            ("when: [{key: \"request.headers[x-env]\", notValues: [prod]}]", mesh.req(mesh.fooSleep, headers: ["X-Env": "dev"]), true),
        ]
        for (rule, r, allowed) in cases {
            let s = try mesh.set(policy("not7", "rules: [{\(rule)}]"))
            let d = s.decide(r)
            #expect(d.isAllowed == allowed, "\(rule) \(r.method) \(r.path) \(r.host): \(d)")
        }
    }

    @Test func whenConditions() throws {
        let cases: [(String, HTTPRequest, Bool)] = [
            ("{key: source.ip, values: [10.1.0.0/16]}", mesh.req(mesh.barSleep), true),
            ("{key: source.ip, values: [10.1.0.0/16]}", mesh.req(mesh.fooSleep), false),
            ("{key: source.namespace, values: [ba*]}", mesh.req(mesh.barSleep), true),
            ("{key: source.principal, values: [cluster.local/ns/foo/sa/sleep]}", mesh.req(mesh.fooSleep), true),
            ("{key: source.principal, values: [cluster.local/ns/foo/sa/sleep]}", mesh.req(mesh.barSleep), false),
            ("{key: destination.ip, values: [10.0.0.1]}", mesh.req(mesh.fooSleep), true),
            ("{key: destination.ip, notValues: [10.0.0.1]}", mesh.req(mesh.fooSleep), false),
            ("{key: destination.port, values: [\"8000\"]}", mesh.req(mesh.fooSleep, port: 8000), true),
            ("{key: destination.port, values: [\"8000\"]}", mesh.req(mesh.fooSleep, port: 8001), false),
            ("{key: \"request.headers[version]\", values: [v1, v2]}", mesh.req(mesh.fooSleep, headers: ["Version": "v2"]), true),
            ("{key: \"request.headers[version]\", values: [v1, v2]}", mesh.req(mesh.fooSleep), false),
            ("{key: \"request.auth.claims[groups]\", values: [admins]}", mesh.req(mesh.fooSleep, claims: ["groups": ["dev", "admins"]]), true),
            ("{key: \"request.auth.claims[groups]\", values: [admins]}", mesh.req(mesh.fooSleep, claims: ["groups": ["dev"]]), false),
            ("{key: request.auth.principal, values: [\"issuer/*\"]}", mesh.req(mesh.fooSleep, jwt: "issuer/alice"), true),
            ("{key: remote.ip, values: [10.0.0.2]}", mesh.req(mesh.fooSleep), true),
        ]
        for (cond, r, allowed) in cases {
            let s = try mesh.set(policy("when", "rules: [{when: [\(cond)]}]"))
            #expect(s.decide(r).isAllowed == allowed, "\(cond)")
        }
        let sni = try mesh.set(policy("sni", "rules: [{when: [{key: connection.sni, values: [\"*.foo.svc\"]}]}]"))
        let tls = HTTPRequest(connection: mesh.conn(mesh.fooSleep, sni: "httpbin.foo.svc"), method: "GET", path: "/")
        #expect(sni.decide(tls).verdict == .allow)
        #expect(sni.decide(mesh.req(mesh.fooSleep)).verdict == .deny)
    }

    @Test func l4WhenConditionsAreEnforcedByZtunnel() throws {
        let s = try mesh.set(policy("l4when", """
            rules:
            - when:
              - {key: source.namespace, values: [foo]}
              - {key: destination.port, notValues: ["9000"]}
            """))
        #expect(s.decide(mesh.conn(mesh.fooSleep, port: 8000)).verdict == .allow)
        #expect(s.decide(mesh.conn(mesh.fooSleep, port: 9000)).verdict == .deny)
        #expect(s.decide(mesh.conn(mesh.barSleep, port: 8000)).verdict == .deny)
    }

    @Test func allowRuleWithL7AttributesMatchesNothingAtL4() throws {
        let s = try mesh.set(policy("allow-get", """
            rules:
            - from: [{source: {namespaces: [foo]}}]
              to: [{operation: {methods: [GET]}}]
            """))
        // ztunnel: the rule is dropped, the ALLOW policy remains -> deny.
        let l4 = s.decide(mesh.conn(mesh.fooSleep))
        #expect(l4.verdict == .deny)
        #expect(s.authorizations(for: .l4).first?.groups.isEmpty == true)
        // waypoint: the rule applies in full.
        #expect(s.decide(mesh.req(mesh.fooSleep, "GET")).verdict == .allow)
        #expect(s.decide(mesh.req(mesh.fooSleep, "POST")).verdict == .deny)
    }

    @Test func denyRuleWithL7AttributesMatchesWithoutThemAtL4() throws {
        let s = try mesh.set(policy("deny-post", """
            action: DENY
            rules:
            - from: [{source: {namespaces: [bar]}}]
              to: [{operation: {methods: [POST], ports: ["8000"]}}]
              when: [{key: \"request.headers[x-token]\", values: ["*"]}]
            """))
        // ztunnel: methods and the header condition are dropped; namespace and port remain.
        #expect(s.decide(mesh.conn(mesh.barSleep, port: 8000)).decidedBy.reason == ref("deny-post", 0))
        #expect(s.decide(mesh.conn(mesh.barSleep, port: 8001)).verdict == .allow)
        #expect(s.decide(mesh.conn(mesh.fooSleep, port: 8000)).verdict == .allow)
        // waypoint: only POST with the header is denied.
        #expect(s.decide(mesh.req(mesh.barSleep, "GET")).verdict == .allow)
        #expect(s.decide(mesh.req(mesh.barSleep, "POST")).verdict == .allow)
        #expect(s.decide(mesh.req(mesh.barSleep, "POST", headers: ["X-Token": "t"])).verdict == .deny)
    }

    @Test func hostsPathsMethodsMatching() throws {
        let s = try mesh.set(policy("l7", """
            rules:
            - to: [{operation: {hosts: [httpbin.foo, "*.example.com"], methods: ["GET", "HE*"], paths: ["/api/*", "*.json", /exact]}}]
            """))
        #expect(s.decide(mesh.req(mesh.fooSleep, "GET", "/api/v1")).verdict == .allow)
        #expect(s.decide(mesh.req(mesh.fooSleep, "HEAD", "/x.json", host: "HTTPBIN.FOO:8000")).verdict == .allow)
        #expect(s.decide(mesh.req(mesh.fooSleep, "GET", "/exact?q=1", host: "a.example.com")).verdict == .allow)
        #expect(s.decide(mesh.req(mesh.fooSleep, "GET", "/exactly")).verdict == .deny)
        #expect(s.decide(mesh.req(mesh.fooSleep, "POST", "/api/v1")).verdict == .deny)
        #expect(s.decide(mesh.req(mesh.fooSleep, "GET", "/api/v1", host: "evil.com")).verdict == .deny)
    }

    @Test func pathTemplates() throws {
        let s = try mesh.set(policy("tpl", """
            rules: [{to: [{operation: {paths: ["/api/{*}/items", "/static/{**}"], notPaths: ["/static/private/{**}"]}}]}]
            """))
        let cases: [(String, Bool)] = [
            ("/api/v1/items", true), ("/api/v1/items?x=1", true), ("/api//items", false), ("/api/v1/v2/items", false),
            ("/static", false), ("/static/", true), ("/static/a/b/c.css", true), ("/static/private/key", false), ("/api/v1/items/x", false),
        ]
        for (path, allowed) in cases {
            #expect(s.decide(mesh.req(mesh.fooSleep, "GET", path)).isAllowed == allowed, "\(path)")
        }
    }

    @Test func auditNeverChangesTheDecision() throws {
        let s = try mesh.set(policy("audit-all", "action: AUDIT\nrules: [{}]"))
        let d = s.decide(mesh.req(mesh.fooSleep))
        #expect(d.verdict == .allow)
        #expect(d.audit?.policy.name == "audit-all")
        let denied = try mesh.set(policy("audit-all", "action: AUDIT\nrules: [{}]") + policy("deny-all", "{}"))
        let dd = denied.decide(mesh.req(mesh.fooSleep))
        #expect(dd.verdict == .deny)
        #expect(dd.audit?.policy.name == "audit-all")
    }

    struct Provider: CustomAuthorizationProvider {
        let allowPath: String
        func check(_ check: CustomCheck) -> Verdict { check.request.path == allowPath ? .allow : .deny }
    }

    @Test func customRunsFirstThroughTheProvider() throws {
        let yaml = policy("ext", """
            action: CUSTOM
            provider: {name: ext-authz}
            rules: [{to: [{operation: {paths: ["/private*"]}}]}]
            """) + policy("allow-all", "rules: [{}]")
        let s = try mesh.set(yaml, providers: ["ext-authz": Provider(allowPath: "/private/ok")])
        #expect(s.decide(mesh.req(mesh.fooSleep, "GET", "/private/ok")).verdict == .allow)
        let denied = s.decide(mesh.req(mesh.fooSleep, "GET", "/private/no"))
        #expect(denied.decidedBy.reason == .customDenied(provider: "ext-authz", RuleReference(policy: PolicyReference(kind: .authorizationPolicy, namespace: "foo", name: "ext"), section: "rules", index: 0)))
        #expect(s.decide(mesh.req(mesh.fooSleep, "GET", "/public")).verdict == .allow)
        // No provider registered: fail closed.
        let missing = try mesh.set(yaml)
        #expect(missing.decide(mesh.req(mesh.fooSleep, "GET", "/private/ok")).verdict == .deny)
        // ztunnel never receives CUSTOM policies.
        #expect(missing.decide(mesh.conn(mesh.fooSleep)).verdict == .allow)
    }

    @Test func targetRefsApplyAtL7Only() throws {
        let s = try mesh.set(policy("svc", """
            targetRefs: [{kind: Service, group: "", name: httpbin}]
            rules: [{from: [{source: {namespaces: [bar]}}]}]
            """))
        #expect(s.decide(mesh.req(mesh.fooSleep)).verdict == .deny)
        #expect(s.decide(mesh.req(mesh.barSleep)).verdict == .allow)
        #expect(s.decide(mesh.conn(mesh.fooSleep)).verdict == .allow)
    }

    @Test func istioOnlyGovernsTCP() throws {
        let s = try mesh.set(policy("deny-all", "{}"))
        var c = mesh.conn(mesh.fooSleep)
        #expect(s.decide(c).verdict == .deny)
        c.protocol = .udp
        let udp = s.decide(c)
        #expect(udp.verdict == .allow && udp.authorization == nil)
    }

    @Test func principalsMayArriveWithTheSpiffeScheme() throws {
        let s = try mesh.set(policy("p", "rules: [{from: [{source: {principals: [cluster.local/ns/foo/sa/sleep], namespaces: [foo]}}]}]"))
        var c = mesh.conn(mesh.fooSleep)
        c.sourcePrincipal = "spiffe://cluster.local/ns/foo/sa/sleep"
        #expect(s.decide(c).verdict == .allow)
        c.sourcePrincipal = "spiffe://cluster.local/ns/bar/sa/sleep"
        #expect(s.decide(c).verdict == .deny)
    }

    @Test func dryRunPoliciesAreNotEnforced() throws {
        let yaml = policy("deny-all", "{}").replacingOccurrences(of: "  namespace: foo\n", with: "  namespace: foo\n  annotations: {istio.io/dry-run: \"true\"}\n")
        let s = try mesh.set(yaml)
        #expect(s.authorizationPolicies.first?.dryRun == true)
        #expect(s.decide(mesh.conn(mesh.fooSleep)).verdict == .allow)
        #expect(s.decide(mesh.req(mesh.fooSleep)).verdict == .allow)
    }

    @Test func protobufAddressBytes() {
        #expect(IPAddress(bytes: [10, 1, 2, 3]) == ip("10.1.2.3"))
        #expect(IPAddress(bytes: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]) == ip("2001:db8::1"))
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
    }

    @Test func gatewayTargetRefAndExplicitWorkloadScope() throws {
        let gateway = Workload(namespace: "foo", name: "waypoint", labels: ["gateway.networking.k8s.io/gateway-name": "waypoint"],
                               addresses: [ip("10.0.0.9")])
        let b = try load(policy("gw", """
            targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
            rules: [{from: [{source: {namespaces: [bar]}}]}]
            """))
        let s = try PolicySet(inventory: Inventory(workloads: [gateway, mesh.fooSleep, mesh.barSleep, mesh.httpbin]),
                              authorizationPolicies: b.authorizationPolicies)
        func to(_ dst: Workload, from src: Workload) -> HTTPRequest {
            HTTPRequest(connection: .mesh(from: src, to: dst, port: 15008), method: "GET", path: "/")
        }
        #expect(s.decide(to(gateway, from: mesh.fooSleep)).verdict == .deny)
        #expect(s.decide(to(gateway, from: mesh.barSleep)).verdict == .allow)
        #expect(s.decide(to(mesh.httpbin, from: mesh.fooSleep)).verdict == .allow)

        var deny = IstioAuthorization.Match()
        deny.namespaces = [.exact("bar")]
        let bound = IstioAuthorization(namespace: "foo", name: "bound", scope: .workloads(["foo/httpbin"]), action: .deny,
                                       groups: [.init(ruleIndex: 0, rules: [[deny]])])
        let t = try PolicySet(inventory: mesh.inventory, istioAuthorizations: [bound])
        #expect(t.decide(mesh.conn(mesh.barSleep)).verdict == .deny)
        #expect(t.decide(Connection.mesh(from: mesh.barSleep, to: mesh.fooSleep, port: 80)).verdict == .allow)
    }

    @Test func serviceAccountsField() throws {
        let s = try mesh.set(policy("sa", "rules: [{from: [{source: {serviceAccounts: [sleep, bar/other]}}]}]"))
        #expect(s.decide(mesh.conn(mesh.fooSleep)).verdict == .allow)
        #expect(s.decide(mesh.conn(mesh.barSleep)).verdict == .deny)
    }

    @Test func engineFormCanBeSuppliedDirectly() throws {
        // The shape ztunnel receives over xDS (istio.security.Authorization).
        var m = IstioAuthorization.Match()
        m.notPrincipals = [.presence]
        let strict = IstioAuthorization(namespace: "istio-system", name: "istio_converted_static_strict",
                                        scope: .global, action: .deny, groups: [.init(ruleIndex: 0, rules: [[m]])])
        let s = try PolicySet(inventory: mesh.inventory, istioAuthorizations: [strict])
        #expect(s.decide(mesh.conn(mesh.legacy, mtls: false)).verdict == .deny)
        #expect(s.decide(mesh.conn(mesh.fooSleep)).verdict == .allow)
    }

    /// Random policies and connections: the compiled engine and the naive
    /// evaluator must agree on every L4 verdict.
    @Test func compiledAgreesWithNaiveOnRandomPolicies() throws {
        var rng = SeededGenerator(seed: 0x1571_0A07)
        let namespaces = ["foo", "bar", "baz"]
        let sas = ["sleep", "httpbin", "admin"]
        var workloads: [Workload] = []
        for (ni, ns) in namespaces.enumerated() {
            for (si, sa) in sas.enumerated() {
                workloads.append(Workload(namespace: ns, name: "\(sa)-\(si)", labels: ["app": sa, "tier": si % 2 == 0 ? "a" : "b"],
                                          serviceAccount: sa, addresses: [IPAddress(v4: 0x0A00_0000 | UInt32(ni) << 8 | UInt32(si + 1))]))
            }
        }
        func pick<T>(_ a: [T]) -> T { a[Int.random(in: 0..<a.count, using: &rng)] }
        func principalPattern() -> String {
            let ns = pick(namespaces), sa = pick(sas)
            return pick(["cluster.local/ns/\(ns)/sa/\(sa)", "cluster.local/ns/\(ns)/*", "*/sa/\(sa)", "*"])
        }
        var checked = 0, allowed = 0
        for _ in 0..<40 {
            var policies: [AuthorizationPolicy] = []
            for pi in 0..<Int.random(in: 1...6, using: &rng) {
                var rules: [AuthorizationPolicy.Rule] = []
                for _ in 0..<Int.random(in: 0...3, using: &rng) {
                    var r = AuthorizationPolicy.Rule()
                    if Bool.random(using: &rng) {
                        var s = AuthorizationPolicy.Source()
                        switch Int.random(in: 0..<6, using: &rng) {
                        case 0: s.principals = [principalPattern()]
                        case 1: s.notPrincipals = [principalPattern()]
                        case 2: s.namespaces = [pick(namespaces), pick(["f*", "*z"])]
                        case 3: s.notNamespaces = [pick(namespaces)]
                        case 4: s.ipBlocks = [CIDR(address: IPAddress(v4: 0x0A00_0000 | UInt32(Int.random(in: 0..<3, using: &rng)) << 8), prefixLength: 24)]
                        default: s.notIpBlocks = [CIDR(address: IPAddress(v4: 0x0A00_0000), prefixLength: 24)]
                        }
                        if Bool.random(using: &rng) { s.requestPrincipals = ["iss/*"] }
                        r.from = [s]
                    }
                    if Bool.random(using: &rng) {
                        var o = AuthorizationPolicy.Operation()
                        if Bool.random(using: &rng) { o.ports = [pick([80, 8080, 9090])] } else { o.notPorts = [pick([80, 8080])] }
                        if Int.random(in: 0..<4, using: &rng) == 0 { o.methods = ["GET"] }
                        r.to = [o]
                    }
                    if Int.random(in: 0..<3, using: &rng) == 0 {
                        r.when = [pick([
                            AuthorizationPolicy.Condition(key: "source.namespace", values: [pick(namespaces)]),
                            AuthorizationPolicy.Condition(key: "destination.port", notValues: ["80"]),
                            AuthorizationPolicy.Condition(key: "request.headers[x]", values: ["1"]),
                            AuthorizationPolicy.Condition(key: "source.principal", values: [principalPattern()]),
                        ])]
                    }
                    rules.append(r)
                }
                let selector: Labels? = pick([nil, ["app": pick(sas)], ["tier": "a"]])
                policies.append(AuthorizationPolicy(namespace: pick(namespaces + ["istio-system"]), name: "p\(pi)", selector: selector,
                                                    action: pick([.allow, .allow, .deny, .audit]),
                                                    rules: Int.random(in: 0..<8, using: &rng) == 0 ? nil : rules))
            }
            let set = try PolicySet(inventory: Inventory(workloads: workloads), authorizationPolicies: policies)
            // The same policies without an inventory: every destination takes the
            // unindexed path and every principal is parsed on the fly.
            let unindexed = try PolicySet(inventory: Inventory(), authorizationPolicies: policies)
            let naive = NaiveAuthorizationEvaluator(policies: policies)
            for _ in 0..<60 {
                let src = pick(workloads), dst = pick(workloads)
                let c = Connection(source: .workload(src), destination: .workload(dst), destinationPort: pick([80, 8080, 9090]),
                                   sourcePrincipal: Bool.random(using: &rng) ? src.principal(trustDomain: "cluster.local") : nil)
                let got = set.decide(c)
                let want = naive.decide(c, destination: dst)
                #expect(got.verdict == want, "\(c.source) -> \(dst.key):\(c.destinationPort) policies=\(policies) got \(got)")
                #expect(unindexed.decide(c).verdict == want)
                let request = HTTPRequest(connection: c, method: "GET", path: "/", headers: ["x": "1"], requestPrincipal: "iss/alice")
                #expect(set.decide(request) == unindexed.decide(request))
                checked += 1
                if want == .allow { allowed += 1 }
            }
        }
        #expect(checked == 2400)
        // Both outcomes must be well represented for the comparison to mean anything.
        #expect(allowed > 400 && checked - allowed > 400)
    }
}
