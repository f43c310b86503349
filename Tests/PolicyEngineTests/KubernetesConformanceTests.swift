import PolicyEngine
import Testing

/// Scenarios of the upstream Kubernetes network-policy e2e suite
/// (test/e2e/network/netpol), as truth tables over namespaces x, y, z and
/// pods a, b, c, on ports 80/81 over TCP and UDP (SCTP where the suite uses it).
@Suite("Kubernetes NetworkPolicy conformance")
struct KubernetesConformanceTests {
    let cluster = E2ECluster()

    func np(_ name: String, ns: String = "x", _ spec: String) -> String {
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: \(name)
          namespace: \(ns)
        spec:
        \(spec.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n"))
        ---

        """
    }

    @Test func noPolicyAllowsEverything() throws {
        let set = try cluster.policySet("")
        let r = Reachability(cluster, default: true)
        r.check(set, port: 80)
        r.check(set, port: 81, protocol: .udp)
    }

    @Test func defaultDenyIngress() throws {
        let set = try cluster.policySet(np("deny-ingress", "podSelector: {}\ningress: []"))
        var r = Reachability(cluster, default: true)
        r.expectPeer(from: { _ in true }, to: { $0.namespace == "x" }, false)
        r.check(set, port: 80)
        r.check(set, port: 81)
    }

    @Test func defaultDenyIngressUDP() throws {
        let set = try cluster.policySet(np("deny-ingress", "podSelector: {}\npolicyTypes: [Ingress]"))
        var r = Reachability(cluster, default: true)
        r.expectPeer(from: { _ in true }, to: { $0.namespace == "x" }, false)
        r.check(set, port: 80, protocol: .udp)
    }

    @Test func defaultDenyAll() throws {
        let set = try cluster.policySet(np("deny-all", "podSelector: {}\npolicyTypes: [Ingress, Egress]"))
        var r = Reachability(cluster, default: true)
        r.expectPeer(from: { _ in true }, to: { $0.namespace == "x" }, false)
        r.expectPeer(from: { $0.namespace == "x" }, to: { _ in true }, false)
        r.check(set, port: 80)
        r.check(set, port: 81, protocol: .udp)
    }

    @Test func allowFromPodsInServerNamespaceByPodSelector() throws {
        let set = try cluster.policySet(np("x-a-allows-x-b", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - podSelector: {matchLabels: {pod: b}}
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expect("x/b", "x/a", true)
        r.check(set, port: 80)
    }

    @Test func allowIngressFromAllNamespaces() throws {
        let set = try cluster.policySet(np("allow-all-ns", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - namespaceSelector: {}
            """))
        Reachability(cluster, default: true).check(set, port: 80)
    }

    @Test func allowOnlyFromDifferentNamespaceByNamespaceSelector() throws {
        let set = try cluster.policySet(np("allow-ns-y", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - namespaceSelector: {matchLabels: {ns: y}}
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expectPeer(from: { $0.namespace == "y" }, to: { $0.key == "x/a" }, true)
        r.check(set, port: 80)
    }

    @Test func podSelectorWithMatchExpressions() throws {
        let set = try cluster.policySet(np("match-expr", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - podSelector:
                  matchExpressions:
                  - {key: pod, operator: In, values: [b]}
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expect("x/b", "x/a", true)
        r.check(set, port: 80)
    }

    @Test func namespaceSelectorWithMatchExpressions() throws {
        let set = try cluster.policySet(np("ns-expr", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions:
                  - {key: ns, operator: NotIn, values: [x]}
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expectPeer(from: { $0.namespace != "x" }, to: { $0.key == "x/a" }, true)
        r.check(set, port: 80)
    }

    @Test func podSelectorOrNamespaceSelector() throws {
        let set = try cluster.policySet(np("pod-or-ns", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions: [{key: ns, operator: NotIn, values: [x]}]
              - podSelector: {matchLabels: {pod: b}}
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expectPeer(from: { $0.namespace != "x" }, to: { $0.key == "x/a" }, true)
        r.expect("x/b", "x/a", true)
        r.check(set, port: 80)
    }

    @Test func podSelectorAndNamespaceSelector() throws {
        let set = try cluster.policySet(np("pod-and-ns", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions: [{key: ns, operator: NotIn, values: [x]}]
                podSelector: {matchLabels: {pod: b}}
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expect("y/b", "x/a", true)
        r.expect("z/b", "x/a", true)
        r.check(set, port: 80)
    }

    @Test func multiplePodSelectorsAndNamespaceSelectors() throws {
        let set = try cluster.policySet(np("multi", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions: [{key: ns, operator: NotIn, values: [x]}]
                podSelector:
                  matchExpressions: [{key: pod, operator: In, values: [b, c]}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        for f in ["y/b", "y/c", "z/b", "z/c"] { r.expect(f, "x/a", true) }
        r.check(set, port: 80)
    }

    @Test func anyPodSelector() throws {
        let set = try cluster.policySet(np("any-pod", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - podSelector: {}
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expectPeer(from: { $0.namespace == "x" }, to: { $0.key == "x/a" }, true)
        r.check(set, port: 80)
    }

    @Test func podInDifferentNamespaceByPodAndNamespaceSelector() throws {
        let set = try cluster.policySet(np("y-b-only", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - namespaceSelector: {matchLabels: {ns: y}}
                podSelector: {matchLabels: {pod: b}}
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expect("y/b", "x/a", true)
        r.check(set, port: 80)
        r.check(set, port: 81)
    }

    @Test func policyBasedOnPorts() throws {
        let set = try cluster.policySet(np("port-81", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - namespaceSelector: {matchLabels: {ns: y}}
              ports:
              - {port: 81, protocol: TCP}
            """))
        var r80 = Reachability(cluster, default: true)
        r80.expectAllIngress("x/a", false)
        r80.check(set, port: 80)
        var r81 = Reachability(cluster, default: true)
        r81.expectAllIngress("x/a", false)
        r81.expectPeer(from: { $0.namespace == "y" }, to: { $0.key == "x/a" }, true)
        r81.check(set, port: 81)
    }

    @Test func policyBasedOnPortsUDP() throws {
        let set = try cluster.policySet(np("port-81-udp", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - namespaceSelector: {matchLabels: {ns: y}}
              ports:
              - {port: 81, protocol: UDP}
            """))
        var r81 = Reachability(cluster, default: true)
        r81.expectAllIngress("x/a", false)
        r81.expectPeer(from: { $0.namespace == "y" }, to: { $0.key == "x/a" }, true)
        r81.check(set, port: 81, protocol: .udp)
        var tcp = Reachability(cluster, default: true)
        tcp.expectAllIngress("x/a", false)
        tcp.check(set, port: 81, protocol: .tcp)
    }

    @Test func stackedPoliciesWithOverlappingPodSelectors() throws {
        let set = try cluster.policySet(np("port-81", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
              ports: [{port: 81}]
            """) + np("port-80", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
              ports: [{port: 80}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expectPeer(from: { $0.namespace == "y" }, to: { $0.key == "x/a" }, true)
        r.check(set, port: 80)
        r.check(set, port: 81)
    }

    @Test func allowAllPolicy() throws {
        let set = try cluster.policySet(np("allow-all", "podSelector: {}\ningress:\n- {}"))
        Reachability(cluster, default: true).check(set, port: 80)
        Reachability(cluster, default: true).check(set, port: 81, protocol: .udp)
    }

    @Test func ingressOnOneNamedPort() throws {
        let set = try cluster.policySet(np("named-81", """
            podSelector: {}
            ingress:
            - ports: [{port: serve-81-tcp}]
            """))
        var r80 = Reachability(cluster, default: true)
        r80.expectPeer(from: { _ in true }, to: { $0.namespace == "x" }, false)
        r80.check(set, port: 80)
        Reachability(cluster, default: true).check(set, port: 81)
    }

    @Test func ingressFromNamespaceOnOneNamedPort() throws {
        let set = try cluster.policySet(np("named-80-from-y", """
            podSelector: {}
            ingress:
            - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
              ports: [{port: serve-80-tcp}]
            """))
        var r80 = Reachability(cluster, default: true)
        r80.expectPeer(from: { _ in true }, to: { $0.namespace == "x" }, false)
        r80.expectPeer(from: { $0.namespace == "y" }, to: { $0.namespace == "x" }, true)
        r80.check(set, port: 80)
        var r81 = Reachability(cluster, default: true)
        r81.expectPeer(from: { _ in true }, to: { $0.namespace == "x" }, false)
        r81.check(set, port: 81)
    }

    @Test func egressOnOneNamedPort() throws {
        let set = try cluster.policySet(np("egress-named-80", """
            podSelector: {matchLabels: {pod: a}}
            policyTypes: [Egress]
            egress:
            - ports: [{port: serve-80-udp, protocol: UDP}, {port: serve-80-tcp}]
            """))
        Reachability(cluster, default: true).check(set, port: 80)
        Reachability(cluster, default: true).check(set, port: 80, protocol: .udp)
        var r81 = Reachability(cluster, default: true)
        r81.expectAllEgress("x/a", false)
        r81.check(set, port: 81)
    }

    @Test func updatedPolicyReplacesOld() throws {
        let before = try cluster.policySet(np("p", """
            podSelector: {matchLabels: {pod: a}}
            ingress: [{ports: [{port: 80}]}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.check(before, port: 81)
        let after = try cluster.policySet(np("p", """
            podSelector: {matchLabels: {pod: a}}
            ingress: [{ports: [{port: 81}]}]
            """))
        Reachability(cluster, default: true).check(after, port: 81)
        r.check(after, port: 80)
    }

    @Test func ingressFromUpdatedNamespaceLabels() throws {
        let yaml = np("from-ns-updated", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from: [{namespaceSelector: {matchLabels: {ns2: updated}}}]
            """)
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.check(try cluster.policySet(yaml), port: 80)
        let relabelled = E2ECluster(namespaceLabels: ["y": ["ns": "y", "ns2": "updated"]])
        let bundle = try load(yaml)
        let set = try PolicySet(inventory: relabelled.inventory, networkPolicies: bundle.networkPolicies)
        var r2 = Reachability(relabelled, default: true)
        r2.expectAllIngress("x/a", false)
        r2.expectPeer(from: { $0.namespace == "y" }, to: { $0.key == "x/a" }, true)
        r2.check(set, port: 80)
    }

    @Test func ingressFromUpdatedPod() throws {
        let yaml = np("from-updated-pod", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from: [{podSelector: {matchLabels: {pod: b, pod2: updated}}}]
            """)
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.check(try cluster.policySet(yaml), port: 80)
        let relabelled = E2ECluster(podLabels: ["x/b": ["pod": "b", "pod2": "updated"]])
        let set = try PolicySet(inventory: relabelled.inventory, networkPolicies: try load(yaml).networkPolicies)
        var r2 = Reachability(relabelled, default: true)
        r2.expectAllIngress("x/a", false)
        r2.expect("x/b", "x/a", true)
        r2.check(set, port: 80)
    }

    @Test func denyIngressToUpdatedPod() throws {
        let yaml = np("deny-target", "podSelector: {matchLabels: {target: isolated}}\npolicyTypes: [Ingress]")
        Reachability(cluster, default: true).check(try cluster.policySet(yaml), port: 80)
        let relabelled = E2ECluster(podLabels: ["x/a": ["pod": "a", "target": "isolated"]])
        let set = try PolicySet(inventory: relabelled.inventory, networkPolicies: try load(yaml).networkPolicies)
        var r = Reachability(relabelled, default: true)
        r.expectAllIngress("x/a", false)
        r.check(set, port: 80)
    }

    @Test func denyIngressFromOtherNamespaces() throws {
        let set = try cluster.policySet(np("same-ns-only", """
            podSelector: {}
            ingress:
            - from: [{podSelector: {}}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectPeer(from: { $0.namespace != "x" }, to: { $0.namespace == "x" }, false)
        r.check(set, port: 80)
    }

    @Test func denyEgressByPodSelector() throws {
        let set = try cluster.policySet(np("a-egress-deny", "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Egress]"))
        var r = Reachability(cluster, default: true)
        r.expectAllEgress("x/a", false)
        r.check(set, port: 80)
    }

    @Test func denyEgressFromAllPodsInNamespace() throws {
        let set = try cluster.policySet(np("ns-egress-deny", "podSelector: {}\npolicyTypes: [Egress]\negress: []"))
        var r = Reachability(cluster, default: true)
        r.expectPeer(from: { $0.namespace == "x" }, to: { _ in true }, false)
        r.check(set, port: 80)
    }

    @Test func ingressAndEgressTogether() throws {
        let set = try cluster.policySet(np("both", """
            podSelector: {matchLabels: {pod: a}}
            policyTypes: [Ingress, Egress]
            ingress:
            - from: [{podSelector: {matchLabels: {pod: b}}}]
            egress:
            - to: [{namespaceSelector: {matchLabels: {ns: y}}}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expect("x/b", "x/a", true)
        r.expectAllEgress("x/a", false)
        r.expectPeer(from: { $0.key == "x/a" }, to: { $0.namespace == "y" }, true)
        r.check(set, port: 80)
    }

    @Test func egressDeniedOnClientEvenIfServerAllows() throws {
        let set = try cluster.policySet(np("client-deny", "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Egress]\negress: []")
            + np("server-allow", ns: "y", "podSelector: {matchLabels: {pod: b}}\ningress:\n- from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]"))
        var r = Reachability(cluster, default: true)
        r.expectAllEgress("x/a", false)
        r.expectAllIngress("y/b", false)
        r.expect("x/a", "y/b", false)
        r.check(set, port: 80)
        // The decision names the client's egress as the reason.
        let d = set.decide(Connection(source: .workload(cluster.pod("x/a")), destination: .workload(cluster.pod("y/b")), destinationPort: 80))
        #expect(d.decidedBy.layer == .egress)
        #expect(d.ingress?.verdict == .allow)
    }

    @Test func egressToDifferentNamespaceByPodAndNamespaceSelector() throws {
        let set = try cluster.policySet(np("egress-y-b", """
            podSelector: {matchLabels: {pod: a}}
            policyTypes: [Egress]
            egress:
            - to: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllEgress("x/a", false)
        r.expect("x/a", "y/b", true)
        r.check(set, port: 80)
    }

    @Test func anyPortOnSpecificProtocol() throws {
        let set = try cluster.policySet(np("any-tcp", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - ports: [{protocol: TCP}]
            """))
        Reachability(cluster, default: true).check(set, port: 80)
        Reachability(cluster, default: true).check(set, port: 81)
        var udp = Reachability(cluster, default: true)
        udp.expectAllIngress("x/a", false)
        udp.check(set, port: 80, protocol: .udp)
    }

    @Test func ingressAllowAllTakesPrecedence() throws {
        let set = try cluster.policySet(np("only-81", """
            podSelector: {matchLabels: {pod: a}}
            ingress: [{ports: [{port: 81}]}]
            """) + np("allow-all", "podSelector: {matchLabels: {pod: a}}\ningress: [{}]"))
        Reachability(cluster, default: true).check(set, port: 80)
        Reachability(cluster, default: true).check(set, port: 81)
    }

    @Test func egressAllowAllTakesPrecedence() throws {
        let set = try cluster.policySet(np("only-81", """
            podSelector: {matchLabels: {pod: a}}
            policyTypes: [Egress]
            egress: [{ports: [{port: 81}]}]
            """) + np("allow-all", "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Egress]\negress: [{}]"))
        Reachability(cluster, default: true).check(set, port: 80)
    }

    @Test func stopEnforcingAfterDelete() throws {
        let yaml = np("deny", "podSelector: {}\npolicyTypes: [Ingress]")
        var r = Reachability(cluster, default: true)
        r.expectPeer(from: { _ in true }, to: { $0.namespace == "x" }, false)
        r.check(try cluster.policySet(yaml), port: 80)
        Reachability(cluster, default: true).check(try cluster.policySet(""), port: 80)
    }

    @Test func egressToServerInCIDRBlock() throws {
        let server = cluster.pod("y/b").addresses[0]
        let set = try cluster.policySet(np("egress-cidr", """
            podSelector: {matchLabels: {pod: a}}
            policyTypes: [Egress]
            egress:
            - to: [{ipBlock: {cidr: \(server)/32}}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllEgress("x/a", false)
        r.expect("x/a", "y/b", true)
        r.check(set, port: 80)
    }

    @Test func exceptClauseInEgressCIDRBlock() throws {
        let server = cluster.pod("x/b").addresses[0]
        let set = try cluster.policySet(np("egress-except", """
            podSelector: {matchLabels: {pod: a}}
            policyTypes: [Egress]
            egress:
            - to: [{ipBlock: {cidr: \(server)/4, except: [\(server)/32]}}]
            """))
        var r = Reachability(cluster, default: true)
        r.expect("x/a", "x/b", false)
        r.check(set, port: 80)
    }

    @Test func ipOverlappingCIDRAndExceptIsAllowedBySecondPolicy() throws {
        let server = cluster.pod("x/b").addresses[0]
        let set = try cluster.policySet(np("egress-except", """
            podSelector: {matchLabels: {pod: a}}
            policyTypes: [Egress]
            egress:
            - to: [{ipBlock: {cidr: \(server)/4, except: [\(server)/32]}}]
            """) + np("egress-server", """
            podSelector: {matchLabels: {pod: a}}
            policyTypes: [Egress]
            egress:
            - to: [{ipBlock: {cidr: \(server)/32}}]
            """))
        Reachability(cluster, default: true).check(set, port: 80)
    }

    @Test func ingressAndEgressControlledIndependently() throws {
        let set = try cluster.policySet(np("allow-egress-a", "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Egress]\negress: [{}]")
            + np("deny-ingress-a", "podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Ingress]"))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.check(set, port: 80)
    }

    @Test func sctpIsNotTCP() throws {
        let set = try cluster.policySet(np("sctp-81", """
            podSelector: {matchLabels: {pod: a}}
            ingress: [{ports: [{port: 81, protocol: SCTP}]}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.check(set, port: 81, protocol: .tcp)
        Reachability(cluster, default: true).check(set, port: 81, protocol: .sctp)
    }

    @Test func udpOnlyPolicyDeniesTCP() throws {
        let set = try cluster.policySet(np("udp-81", """
            podSelector: {matchLabels: {pod: a}}
            ingress: [{ports: [{port: 81, protocol: UDP}]}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.check(set, port: 81, protocol: .tcp)
        Reachability(cluster, default: true).check(set, port: 81, protocol: .udp)
    }

    @Test func defaultNamespaceLabelMatchLabels() throws {
        let set = try cluster.policySet(np("md-name", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expectPeer(from: { $0.namespace == "z" }, to: { $0.key == "x/a" }, true)
        r.check(set, port: 80)
    }

    @Test func defaultNamespaceLabelMatchExpressions() throws {
        let set = try cluster.policySet(np("md-expr", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [y]}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expectPeer(from: { $0.namespace != "y" }, to: { $0.key == "x/a" }, true)
        r.check(set, port: 80)
    }

    @Test func endPortRange() throws {
        let set = try cluster.policySet(np("range", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from: [{namespaceSelector: {}}]
              ports: [{port: 81, endPort: 82, protocol: TCP}]
            """))
        var r80 = Reachability(cluster, default: true)
        r80.expectAllIngress("x/a", false)
        r80.check(set, port: 80)
        Reachability(cluster, default: true).check(set, port: 81)
        Reachability(cluster, default: true).check(set, port: 82)
        r80.check(set, port: 83)
    }

    @Test func endPortRangeWithNamespaceAndPodSelector() throws {
        let set = try cluster.policySet(np("range-yz", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: In, values: [y, z]}]}, podSelector: {matchLabels: {pod: b}}}]
              ports: [{port: 80, endPort: 81}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.expect("y/b", "x/a", true)
        r.expect("z/b", "x/a", true)
        r.check(set, port: 80)
        r.check(set, port: 81)
    }

    @Test func unionOfThreePolicies() throws {
        let set = try cluster.policySet(np("from-y", """
            podSelector: {matchLabels: {pod: a}}
            ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]
            """) + np("from-x-c", """
            podSelector: {matchLabels: {pod: a}}
            ingress: [{from: [{podSelector: {matchLabels: {pod: c}}}]}]
            """) + np("from-z-b-udp", """
            podSelector: {matchLabels: {pod: a}}
            ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}, podSelector: {matchLabels: {pod: b}}}], ports: [{port: 80, protocol: UDP}]}]
            """))
        var tcp = Reachability(cluster, default: true)
        tcp.expectAllIngress("x/a", false)
        tcp.expectPeer(from: { $0.namespace == "y" }, to: { $0.key == "x/a" }, true)
        tcp.expect("x/c", "x/a", true)
        tcp.check(set, port: 80)
        var udp = Reachability(cluster, default: true)
        udp.expectAllIngress("x/a", false)
        udp.expect("x/c", "x/a", true)
        udp.expect("z/b", "x/a", true)
        udp.check(set, port: 80, protocol: .udp)
    }

    @Test func ingressFromIPBlockWithExcept() throws {
        // Allow all of 10.0.0.0/8 except namespace y's /16.
        let set = try cluster.policySet(np("from-cidr", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.2.0.0/16]}}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectPeer(from: { $0.namespace == "y" }, to: { $0.key == "x/a" }, false)
        r.check(set, port: 80)
        let outside = set.decide(Connection(source: .external(ip("192.0.2.1")), destination: .workload(cluster.pod("x/a")), destinationPort: 80))
        #expect(outside.verdict == .deny)
        let inside = set.decide(Connection(source: .external(ip("10.99.0.1")), destination: .workload(cluster.pod("x/a")), destinationPort: 80))
        #expect(inside.verdict == .allow)
    }

    @Test func decisionNamesThePolicyAndRule() throws {
        let set = try cluster.policySet(np("first", """
            podSelector: {matchLabels: {pod: a}}
            ingress:
            - from: [{podSelector: {matchLabels: {pod: c}}}]
            - from: [{podSelector: {matchLabels: {pod: b}}}]
            """))
        let allowed = set.decide(Connection(source: .workload(cluster.pod("x/b")), destination: .workload(cluster.pod("x/a")), destinationPort: 80))
        #expect(allowed.decidedBy.reason == .rule(RuleReference(policy: PolicyReference(kind: .networkPolicy, namespace: "x", name: "first"), section: "ingress", index: 1)))
        let denied = set.decide(Connection(source: .workload(cluster.pod("y/b")), destination: .workload(cluster.pod("x/a")), destinationPort: 80))
        #expect(denied.decidedBy.reason == .defaultDeny([PolicyReference(kind: .networkPolicy, namespace: "x", name: "first")]))
    }

    @Test func egressRulesWithoutPolicyTypesAlsoIsolateIngress() throws {
        let set = try cluster.policySet(np("implicit-types", """
            podSelector: {matchLabels: {pod: a}}
            egress: [{}]
            """))
        var r = Reachability(cluster, default: true)
        r.expectAllIngress("x/a", false)
        r.check(set, port: 80)
    }
}
