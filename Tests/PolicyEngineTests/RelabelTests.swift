import PolicyEngine
import Testing

@Suite("Selector caches follow label changes")
struct RelabelTests {
    let cluster = E2ECluster()

    static let denyIngressToA = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-a, namespace: x}
        spec:
          podSelector: {matchLabels: {pod: a}}
          policyTypes: [Ingress]
        """

    @Test("a relabelled pod is matched by its new labels, not the cached selection of its old ones")
    func relabelledPod() throws {
        let set = try cluster.policySet(Self.denyIngressToA)
        let a = cluster.pod("x/a"), b = cluster.pod("x/b")
        #expect(!set.decide(Connection(source: .workload(b), destination: .workload(a), destinationPort: 80)).isAllowed)
        var relabelled = a
        relabelled.labels["pod"] = "z"
        #expect(set.decide(Connection(source: .workload(b), destination: .workload(relabelled), destinationPort: 80)).isAllowed)
        // And the other way: b relabelled to pod=a is selected although its cached selection is empty.
        var nowA = b
        nowA.labels["pod"] = "a"
        #expect(!set.decide(Connection(source: .workload(a), destination: .workload(nowA), destinationPort: 80)).isAllowed)
    }

    @Test("a relabelled namespace in a new inventory changes a namespaceSelector decision")
    func relabelledNamespace() throws {
        let policy = """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: from-team, namespace: x}
            spec:
              podSelector: {}
              ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}}]}]
            """
        let bundle = try load(policy)
        let before = try PolicySet(inventory: cluster.inventory, networkPolicies: bundle.networkPolicies)
        let connection = Connection(source: .workload(cluster.pod("y/a")), destination: .workload(cluster.pod("x/a")), destinationPort: 80)
        #expect(!before.decide(connection).isAllowed)
        let namespaces = cluster.inventory.namespaces.values.map { ns in
            ns.name == "y" ? Namespace(name: "y", labels: ns.labels.merging(["team": "blue"]) { $1 }) : ns
        }
        let after = try PolicySet(inventory: Inventory(namespaces: namespaces, workloads: cluster.pods), networkPolicies: bundle.networkPolicies)
        #expect(after.decide(connection).isAllowed)
    }
}
