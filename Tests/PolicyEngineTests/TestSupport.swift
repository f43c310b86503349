import Foundation
import PolicyEngine
import MeshTestSupport
import Testing

/// Locates files under Tests/PolicyEngineTests/Fixtures.
enum Fixtures {
    static var directory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    }

    static func path(_ name: String) -> String { directory + "/" + name }
}

func ip(_ s: String) -> IPAddress {
    guard let a = IPAddress(s) else { fatalError("bad test IP \(s)") }
    return a
}

func cidr(_ s: String) -> CIDR {
    guard let c = CIDR(s) else { fatalError("bad test CIDR \(s)") }
    return c
}

/// Loads YAML text, failing the test with the loader's message if invalid.
func load(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> PolicyBundle {
    do {
        return try ManifestLoader().load(yaml: yaml, file: "test.yaml")
    } catch {
        Issue.record("load failed: \(error)", sourceLocation: sourceLocation)
        throw error
    }
}

/// The upstream network-policy e2e cluster: namespaces x, y, z (labelled
/// `ns: <name>`), pods a, b, c in each (labelled `pod: <name>`), each serving
/// ports 80 and 81 over TCP, UDP and SCTP with named ports `serve-<port>-<proto>`.
struct E2ECluster {
    static let namespaceNames = ["x", "y", "z"]
    static let podNames = ["a", "b", "c"]

    let namespaces: [Namespace]
    let pods: [Workload]

    init(namespaceLabels: [String: Labels] = [:], podLabels: [String: Labels] = [:]) {
        namespaces = E2ECluster.namespaceNames.map { n in
            Namespace(name: n, labels: namespaceLabels[n] ?? ["ns": n])
        }
        var pods: [Workload] = []
        for (ni, n) in E2ECluster.namespaceNames.enumerated() {
            for (pi, p) in E2ECluster.podNames.enumerated() {
                var named: [NamedPort] = []
                for port in [80, 81] as [UInt16] {
                    for proto in TransportProtocol.allCases {
                        named.append(NamedPort(name: "serve-\(port)-\(proto.rawValue.lowercased())", port: port, protocol: proto))
                    }
                }
                pods.append(Workload(namespace: n, name: p, labels: podLabels["\(n)/\(p)"] ?? ["pod": p],
                                     addresses: [IPAddress(v4: UInt32(10) << 24 | UInt32(ni + 1) << 16 | UInt32(pi + 1) << 8 | 1)],
                                     namedPorts: named))
            }
        }
        self.pods = pods
    }

    var inventory: Inventory { Inventory(namespaces: namespaces, workloads: pods) }

    func pod(_ key: String) -> Workload {
        guard let p = pods.first(where: { $0.key == key }) else { fatalError("no pod \(key)") }
        return p
    }

    func policySet(_ yaml: String) throws -> PolicySet {
        let bundle = try load(yaml)
        return try PolicySet(inventory: inventory, authorizationPolicies: bundle.authorizationPolicies,
                             networkPolicies: bundle.networkPolicies, ciliumPolicies: bundle.ciliumPolicies)
    }
}

/// Expected connectivity between every pair of pods, built like the upstream
/// suite's `Reachability` (start from a default, then carve out expectations).
struct Reachability {
    var expected: [String: Bool] = [:]
    let pods: [Workload]

    init(_ cluster: E2ECluster, default value: Bool) {
        pods = cluster.pods
        for f in pods { for t in pods { expected[f.key + ">" + t.key] = value } }
    }

    mutating func expectPeer(from: (Workload) -> Bool, to: (Workload) -> Bool, _ value: Bool) {
        for f in pods where from(f) { for t in pods where to(t) { expected[f.key + ">" + t.key] = value } }
    }

    mutating func expect(_ from: String, _ to: String, _ value: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        requirePods(from, to, sourceLocation: sourceLocation)
        expected[from + ">" + to] = value
    }

    /// Everything into `to` (including from itself).
    mutating func expectAllIngress(_ to: String, _ value: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        requirePods(to, sourceLocation: sourceLocation)
        expectPeer(from: { _ in true }, to: { $0.key == to }, value)
    }

    mutating func expectAllEgress(_ from: String, _ value: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        requirePods(from, sourceLocation: sourceLocation)
        expectPeer(from: { $0.key == from }, to: { _ in true }, value)
    }

    /// A misspelt pod would otherwise make its expectation match nothing and never fail.
    private func requirePods(_ keys: String..., sourceLocation: SourceLocation) {
        for key in keys where !pods.contains(where: { $0.key == key }) {
            Issue.record("no pod \(key) in the cluster", sourceLocation: sourceLocation)
        }
    }

    /// Compares with `set` for one port and protocol; records every mismatch.
    /// A pod talking to itself is left out: that is loopback, which network
    /// policy implementations treat differently.
    func check(_ set: PolicySet, port: UInt16, protocol proto: TransportProtocol = .tcp,
               sourceLocation: SourceLocation = #_sourceLocation) {
        var wrong: [String] = []
        for f in pods {
            for t in pods where t.key != f.key {
                let d = set.decide(Connection(source: .workload(f), destination: .workload(t), destinationPort: port, protocol: proto))
                let want = expected[f.key + ">" + t.key] ?? false
                if d.isAllowed != want { wrong.append("\(f.key)->\(t.key) got \(d.verdict) want \(want ? "ALLOW" : "DENY") (\(d.decidedBy))") }
            }
        }
        #expect(wrong.isEmpty, "\(port)/\(proto): \(wrong.count) mismatches:\n\(wrong.joined(separator: "\n"))", sourceLocation: sourceLocation)
    }
}
