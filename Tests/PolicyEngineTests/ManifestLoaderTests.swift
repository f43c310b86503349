import Foundation
import PolicyEngine
import MeshTestSupport
import Testing

@Suite("Manifest loading")
struct ManifestLoaderTests {
    @Test func loadsTheDemoDirectory() throws {
        let bundle = try ManifestLoader().load(directory: Fixtures.path("demo"))
        #expect(bundle.namespaces.map(\.name) == ["shop", "payments"])
        #expect(bundle.workloads.map(\.key) == ["shop/frontend", "shop/checkout", "payments/api"])
        let api = try #require(bundle.workloads.first { $0.name == "api" })
        #expect(api.serviceAccount == "payments")
        #expect(api.addresses == [ip("10.20.0.5")])
        #expect(api.resolve(namedPort: "http", protocol: .tcp) == 8443)
        #expect(bundle.networkPolicies.count == 1 && bundle.authorizationPolicies.count == 1 && bundle.ciliumPolicies.count == 1)
        #expect(bundle.skipped.count == 1 && bundle.skipped[0].contains("Deployment ignored-by-the-engine"))
        #expect(bundle.inventory.namespaceLabels("payments")["team"] == "money")
    }

    @Test func demoDecisions() throws {
        let bundle = try ManifestLoader().load(directory: Fixtures.path("demo"))
        let set = try PolicySet(bundle: bundle)
        let inv = set.inventory
        let checkout = try #require(inv.workload("shop/checkout")), frontend = try #require(inv.workload("shop/frontend"))
        let api = try #require(inv.workload("payments/api"))
        #expect(set.decide(Connection.mesh(from: checkout, to: api, port: 8443)).verdict == .allow)
        let viaFrontend = set.decide(Connection.mesh(from: frontend, to: api, port: 8443))
        #expect(viaFrontend.verdict == .deny && viaFrontend.decidedBy.layer == .authorization)
        #expect(viaFrontend.ingress?.verdict == .allow)
        let wrongPort = set.decide(Connection.mesh(from: checkout, to: api, port: 9090))
        #expect(wrongPort.verdict == .deny && wrongPort.decidedBy.layer == .ingress)
        let status = HTTPRequest(connection: .mesh(from: frontend, to: api, port: 8443), method: "GET", path: "/status")
        #expect(set.decide(status).decidedBy.reason == .rule(RuleReference(
            policy: PolicyReference(kind: .authorizationPolicy, namespace: "payments", name: "payments-authz"), section: "rules", index: 1)))
        let charge = HTTPRequest(connection: .mesh(from: frontend, to: api, port: 8443), method: "POST", path: "/charge")
        #expect(set.decide(charge).verdict == .deny)
        #expect(set.decide(Connection(source: .external(ip("1.2.3.4")), destination: .workload(frontend), destinationPort: 8080)).verdict == .deny)
        #expect(set.decide(Connection(source: .workload(checkout), destination: .workload(frontend), destinationPort: 8080)).verdict == .allow)
    }

    /// How `meshctl policy check --from/--to` names a peer.
    @Test func peersByNameOrAddress() throws {
        let set = try PolicySet(bundle: ManifestLoader().load(directory: Fixtures.path("demo")))
        let api = try #require(set.inventory.workload("payments/api"))
        #expect(set.inventory.peer("payments/api") == .workload(api))
        #expect(set.inventory.peer("10.20.0.5") == .external(ip("10.20.0.5")))
        #expect(set.normalize(try #require(set.inventory.peer("10.20.0.5"))) == .workload(api))
        #expect(set.inventory.peer("fd00::9") == .external(ip("fd00::9")))
        #expect(set.inventory.peer("payments/nope") == nil)
        #expect(set.inventory.peer("api") == nil)
        #expect(set.inventory.peer("") == nil)
    }

    @Test func fileErrorNamesFileDocumentAndField() throws {
        let path = Fixtures.path("invalid/unknown-field.yaml")
        #expect {
            try ManifestLoader().load(file: path)
        } throws: { error in
            guard let e = error as? PolicyLoadError else { return false }
            return e.file == path && e.documentIndex == 1 && e.fieldPath == "spec.rules[0].from[0].source.principal"
                && e.kind == .unknownField && e.description.contains("unknown field 'principal'")
        }
    }

    @Test func directoryLoadIsAllOrNothing() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("policy-loader-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(atPath: Fixtures.path("demo/20-policies.yaml"), toPath: dir.appendingPathComponent("a.yaml").path)
        #expect(try ManifestLoader().load(directory: dir.path).networkPolicies.count == 1)
        try FileManager.default.copyItem(atPath: Fixtures.path("invalid/unknown-field.yaml"), toPath: dir.appendingPathComponent("b.yaml").path)
        #expect(throws: PolicyLoadError.self) { try ManifestLoader().load(directory: dir.path) }
        // The same object in two files is a conflict, not an override.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("b.yaml"))
        try FileManager.default.copyItem(atPath: Fixtures.path("demo/20-policies.yaml"), toPath: dir.appendingPathComponent("c.yaml").path)
        #expect { try ManifestLoader().load(directory: dir.path) } throws: { ($0 as? PolicyLoadError)?.kind == .duplicate }
    }

    @Test func kubectlListOutputLoads() throws {
        let yaml = """
            apiVersion: v1
            kind: List
            metadata: {resourceVersion: ""}
            items:
            - apiVersion: v1
              kind: Pod
              metadata:
                name: web-7d4b9
                namespace: shop
                labels: {app: web}
                uid: 0b1c
                ownerReferences: [{kind: ReplicaSet, name: web-7d4b}]
                someFutureField: tolerated on inventory objects
              spec: {serviceAccountName: web, nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
              status: {phase: Running, podIP: 10.1.2.3, podIPs: [{ip: 10.1.2.3}, {ip: "fd00::3"}]}
            - apiVersion: networking.k8s.io/v1
              kind: NetworkPolicy
              metadata: {name: deny, namespace: shop}
              spec: {podSelector: {}}
            """
        let b = try ManifestLoader().load(yaml: yaml)
        #expect(b.workloads.map(\.key) == ["shop/web-7d4b9"])
        #expect(b.workloads.first?.addresses == [ip("10.1.2.3"), ip("fd00::3")])
        #expect(b.networkPolicies.count == 1)
    }

    /// Seeded random corruption of valid manifests: every outcome is either a
    /// bundle or a PolicyLoadError naming the file; nothing crashes.
    @Test func corruptedManifestsNeverCrash() throws {
        var rng = SeededGenerator(seed: 0xF022)
        let sources = try ["demo/20-policies.yaml", "demo/10-workloads.yaml"].map {
            try String(contentsOfFile: Fixtures.path($0), encoding: .utf8)
        } + [ManifestLoaderTests.cnp + "spec: {endpointSelector: {}, ingress: [{fromCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}], toPorts: [{ports: [{port: '80', endPort: 90}], rules: {http: [{method: GET, path: '/a.*'}]}}]}]}"]
        let junk: [String] = ["", ":", "-", "[", "]", "{", "}", "*", "/", "::", "'", "\"", "#", "\n", "  ", "0", "-1", "99999",
                              "null", "~", "&a", "*a", "!!binary", "10.0.0.0/33", "fe80::1::2", "٣"]
        var errors = 0, loaded = 0
        for i in 0..<400 {
            var chars = Array(sources[i % sources.count])
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Int.random(in: 0..<chars.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: chars.remove(at: at)
                case 1: chars.insert(contentsOf: Array(junk[Int.random(in: 0..<junk.count, using: &rng)]), at: at)
                default: chars[at] = junk[Int.random(in: 1..<junk.count, using: &rng)].first ?? "x"
                }
            }
            do {
                _ = try ManifestLoader().load(yaml: String(chars), file: "fuzz-\(i).yaml")
                loaded += 1
            } catch {
                #expect(error.file == "fuzz-\(i).yaml" && !error.message.isEmpty)
                errors += 1
            }
        }
        #expect(errors + loaded == 400)
        #expect(errors > 100)
    }

    @Test func missingFileAndDirectoryAreIOErrors() {
        #expect { try ManifestLoader().load(file: "/nonexistent/x.yaml") } throws: { error in
            guard let e = error as? PolicyLoadError else { return false }
            return e.kind == .io && e.description.hasPrefix("/nonexistent/x.yaml: cannot read file")
        }
        #expect { try ManifestLoader().load(directory: "/nonexistent") } throws: { ($0 as? PolicyLoadError)?.kind == .io }
    }

    static let ap = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: ns}\n"
    static let np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: ns}\n"
    static let cnp = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: ns}\n"

    /// Each malformed manifest: (yaml, document index, field path, kind).
    static let malformed: [(String, Int, String, PolicyLoadError.Kind)] = [
        (ap + "spec: {rules: [{from: [{source: {principal: [x]}}]}]}", 0, "spec.rules[0].from[0].source.principal", .unknownField),
        (ap + "spec: {action: PERMIT}", 0, "spec.action", .invalidValue),
        (ap + "spec: {rules: [{from: [{source: {ipBlocks: [10.0.0.0/8, 10.0.0.300]}}]}]}", 0, "spec.rules[0].from[0].source.ipBlocks[1]", .invalidValue),
        (ap + "spec: {rules: [{to: [{operation: {ports: [http]}}]}]}", 0, "spec.rules[0].to[0].operation.ports[0]", .invalidValue),
        (ap + "spec: {rules: [{when: [{key: request.colour, values: [red]}]}]}", 0, "spec.rules[0].when[0].key", .invalidValue),
        (ap + "spec: {rules: [{to: [{operation: {paths: [/ok, \"/a/{**}/b\"]}}]}]}", 0, "spec.rules[0].to[0].operation.paths[1]", .invalidValue),
        (ap + "spec: {rules: [{when: [{key: source.ip, values: [nope]}]}]}", 0, "spec.rules[0].when[0].values[0]", .invalidValue),
        (ap + "spec: {rules: [{when: [{key: source.ip}]}]}", 0, "spec.rules[0].when[0]", .missingField),
        (ap + "spec: {action: CUSTOM, rules: [{}]}", 0, "spec.provider", .missingField),
        (ap + "spec: {rules: [{from: [{source: {}}]}]}", 0, "spec.rules[0].from[0].source", .invalidValue),
        (ap + "spec: {rules: [{from: [{}]}]}", 0, "spec.rules[0].from[0].source", .missingField),
        (ap + "spec: {selector: {matchLabels: {a: b}}, targetRefs: [{kind: Service, name: s}]}", 0, "spec.targetRefs", .invalidValue),
        (ap + "spec: {rules: {from: []}}", 0, "spec.rules", .wrongType),
        (np + "spec: {}", 0, "spec.podSelector", .missingField),
        (np + "spec: {podSelector: {}, policyTypes: [Inbound]}", 0, "spec.policyTypes[0]", .invalidValue),
        (np + "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}", 0, "spec.ingress[0].from[0]", .invalidValue),
        (np + "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]}", 0, "spec.ingress[0].from[0].ipBlock.except[0]", .invalidValue),
        (np + "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.1}}]}]}", 0, "spec.ingress[0].from[0].ipBlock.cidr", .invalidValue),
        (np + "spec: {podSelector: {}, ingress: [{ports: [{port: http, endPort: 90}]}]}", 0, "spec.ingress[0].ports[0].endPort", .invalidValue),
        (np + "spec: {podSelector: {}, ingress: [{ports: [{port: 90, endPort: 80}]}]}", 0, "spec.ingress[0].ports[0].endPort", .invalidValue),
        (np + "spec: {podSelector: {}, ingress: [{ports: [{port: 80, protocol: ICMP}]}]}", 0, "spec.ingress[0].ports[0].protocol", .invalidValue),
        (np + "spec: {podSelector: {}, ingress: [{ports: [{port: 70000}]}]}", 0, "spec.ingress[0].ports[0].port", .invalidValue),
        (np + "spec: {podSelector: {matchExpressions: [{key: a, operator: In}]}}", 0, "spec.podSelector.matchExpressions[0].values", .invalidValue),
        (np + "spec: {podSelector: {matchExpressions: [{key: a, operator: Near, values: [b]}]}}", 0, "spec.podSelector.matchExpressions[0].operator", .invalidValue),
        (np + "spec: {podSelector: {}, ingress: {from: []}}", 0, "spec.ingress", .wrongType),
        (np + "spec: {podSelector: {}, ingress: [{from: [{}]}]}", 0, "spec.ingress[0].from[0]", .missingField),
        (cnp + "spec: {endpointSelector: {}, ingress: [{fromEntities: [galaxy]}]}", 0, "spec.ingress[0].fromEntities[0]", .invalidValue),
        (cnp + "spec: {endpointSelector: {}, ingress: [{toPorts: [{ports: [{port: '80'}], rules: {http: [{path: '/a('}]}}]}]}", 0, "spec.ingress[0].toPorts[0].rules.http[0].path", .invalidValue),
        (cnp + "spec: {endpointSelector: {}, egress: [{toFQDNs: [{matchName: x.com}]}]}", 0, "spec.egress[0].toFQDNs", .unsupported),
        (cnp + "spec: {endpointSelector: {}, ingressDeny: [{toPorts: [{ports: [{port: '80'}], rules: {http: [{method: GET}]}}]}]}", 0, "spec.ingressDeny[0].toPorts[0].rules", .invalidValue),
        (cnp + "spec: {endpointSelector: {}, ingress: [{authentication: {mode: sometimes}}]}", 0, "spec.ingress[0].authentication.mode", .invalidValue),
        (cnp + "spec: {endpointSelector: {}, ingress: [{fromCIDRSet: [{cidr: 10.0.0.0/8, except: [192.168.0.0/16]}]}]}", 0, "spec.ingress[0].fromCIDRSet[0].except[0]", .invalidValue),
        (cnp + "spec: {endpointSelector: {}, ingress: [{toPorts: [{ports: [{port: '80', protocol: ICMP}]}]}]}", 0, "spec.ingress[0].toPorts[0].ports[0].protocol", .invalidValue),
        (cnp + "spec: {endpointSelector: {}, ingress: [{fromEndpoint: [{}]}]}", 0, "spec.ingress[0].fromEndpoint", .unknownField),
        (cnp + "spec: {ingress: []}", 0, "spec.endpointSelector", .missingField),
        (cnp + "specs: []", 0, "specs", .unsupported),
        ("apiVersion: security.istio.io/v2\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {}", 0, "apiVersion", .invalidValue),
        ("apiVersion: v1\nkind: Pod\nmetadata: {namespace: ns}", 0, "metadata.name", .missingField),
        ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, lables: {a: b}}\nspec: {podSelector: {}}", 0, "metadata.lables", .unknownField),
        ("apiVersion: v1\nkind: List\nitems:\n- " + "{apiVersion: v1, kind: Pod, metadata: {name: a}}\n- {apiVersion: v1, kind: Pod, metadata: {namespace: x}}", 0, "items[1].metadata.name", .missingField),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {podIP: 10.0.0.999}", 0, "status.podIP", .invalidValue),
        (ap + "spec: {}\n---\n" + ap + "spec: {}", 1, "metadata.name", .duplicate),
        (np + "spec: {podSelector: {}}\n---\n" + np.replacingOccurrences(of: "name: p,", with: "name: q,") + "spec: {podSelector: {}, bogus: 1}", 1, "spec.bogus", .unknownField),
        ("kind: [unclosed", 0, "", .syntax),
    ]

    @Test(arguments: malformed.indices)
    func malformedManifestGivesPreciseError(index: Int) {
        let (yaml, doc, path, kind) = ManifestLoaderTests.malformed[index]
        do {
            let bundle = try ManifestLoader().load(yaml: yaml, file: "bad.yaml")
            Issue.record("case \(index) loaded without error: \(bundle.authorizationPolicies.count + bundle.networkPolicies.count + bundle.ciliumPolicies.count) policies")
        } catch {
            #expect(error.file == "bad.yaml")
            #expect(error.documentIndex == doc, "case \(index): \(error)")
            #expect(error.fieldPath == path, "case \(index): \(error)")
            #expect(error.kind == kind, "case \(index): \(error)")
            #expect(!error.message.isEmpty)
        }
    }
}
