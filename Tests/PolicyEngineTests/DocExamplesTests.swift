import PolicyEngine
import Testing

/// The examples of docs/policy.md, run as tests.
@Suite("docs/policy.md examples")
struct DocExamplesTests {
    @Test func useItFromSwift() throws {
        let bundle = try ManifestLoader().load(directory: Fixtures.path("demo"))
        let policies = try PolicySet(bundle: bundle)

        let checkout = try #require(bundle.inventory.workload("shop/checkout"))
        let api = try #require(bundle.inventory.workload("payments/api"))

        let decision = policies.decide(Connection.mesh(from: checkout, to: api, port: 8443))
        #expect(decision.verdict == .allow)
        #expect(decision.decidedBy.description == "authorization: ALLOW by rule AuthorizationPolicy payments/payments-authz rules[0]")

        let request = HTTPRequest(connection: .mesh(from: checkout, to: api, port: 8443),
                                  method: "POST", path: "/charge", host: "payments-api")
        #expect(policies.decide(request).isAllowed)

        let datapath = DatapathCompiler().compile(policies)
        let apiMap = try #require(datapath.endpoints["payments/api"])
        let verdict = apiMap.lookup(direction: .ingress, remoteIdentity: datapath.identity(of: checkout.addresses[0]),
                                    ipProtocol: 6, port: 8443)
        #expect(verdict.description == "ALLOW (ingress id=257 proto=6 port=8443/16)")
        // frontend is in the storefront namespace too, so the network admits it on 8443 ...
        let frontend = try #require(bundle.inventory.workload("shop/frontend"))
        #expect(apiMap.lookup(direction: .ingress, remoteIdentity: datapath.identity(of: frontend.addresses[0]),
                              ipProtocol: 6, port: 8443).verdict == .allow)
        // ... but not on another port.
        #expect(apiMap.lookup(direction: .ingress, remoteIdentity: datapath.identity(of: frontend.addresses[0]),
                              ipProtocol: 6, port: 22).verdict == .deny)
    }

    /// A `PolicySet` is an immutable value: many tasks decide on it at once.
    @Test func concurrentDecisionsAgreeWithSequentialOnes() async throws {
        let bundle = try ManifestLoader().load(directory: Fixtures.path("demo"))
        let policies = try PolicySet(bundle: bundle)
        let pods = bundle.workloads
        let connections: [Connection] = pods.flatMap { a in
            pods.flatMap { b in ([8080, 8443, 9090] as [UInt16]).map { Connection.mesh(from: a, to: b, port: $0) } }
        }
        let sequential = connections.map { policies.decide($0) }
        let concurrent = await withTaskGroup(of: [Decision].self) { group in
            for _ in 0..<4 { group.addTask { connections.map { policies.decide($0) } } }
            var all: [[Decision]] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(concurrent.count == 4)
        for r in concurrent { #expect(r == sequential) }
        #expect(sequential.contains { $0.isAllowed } && sequential.contains { !$0.isAllowed })
    }
}
