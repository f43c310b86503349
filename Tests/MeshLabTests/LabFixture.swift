import Foundation
import MeshLab
import MeshTestSupport
import Testing

/// A lab built from `Fixtures/NAME` under its own namespace prefix and state
/// directory (so it runs beside a `scripts/lab` lab), with helpers to run
/// commands in pods and nodes. The manifests are copied to a scratch
/// directory that a test may edit and `apply`.
final class LabFixture: Sendable {
    let lab: Lab
    let manifests: String
    let topology: LabTopology

    static let binaries = Interop.packageRoot + "/.build/debug"
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/" + name
    }

    /// Builds and starts the lab (after removing what a crashed earlier run left), with
    /// `ztunnelArguments` added to every ztunnel and the control plane run as `controlPlane` says.
    static func start(_ fixture: String, prefix: String, ztunnelArguments: [String] = [],
                      controlPlane: LabControlPlane = LabControlPlane()) async throws -> LabFixture {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("lab-\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: Self.fixture(fixture)) {
            try FileManager.default.copyItem(atPath: Self.fixture(fixture) + "/" + file, toPath: scratch + "/" + file)
        }
        let lab = Lab(layout: LabLayout(root: "/run/swift-mesh-\(prefix)"), binaries: binaries, prefix: prefix,
                      ztunnelArguments: ztunnelArguments, controlPlane: controlPlane)
        let topology = try await Interop.onThread {
            try? lab.down()
            do {
                return try lab.up(manifests: scratch)
            } catch {
                try? lab.down()
                throw error
            }
        }
        return LabFixture(lab: lab, manifests: scratch, topology: topology)
    }

    private init(lab: Lab, manifests: String, topology: LabTopology) {
        self.lab = lab
        self.manifests = manifests
        self.topology = topology
    }

    /// Removes everything (call in a `defer`).
    func stop() {
        try? lab.down()
        try? FileManager.default.removeItem(atPath: manifests)
    }

    func pod(_ key: String) -> LabTopology.Pod {
        guard let pod = (lab.record?.topology ?? topology).pod(key) else { fatalError("fixture has no pod \(key)") }
        return pod
    }

    func node(_ name: String) -> LabTopology.Node {
        guard let node = topology.node(name) else { fatalError("fixture has no node \(name)") }
        return node
    }

    /// Runs `argv` in a network namespace; returns status and output.
    func run(netns: String, _ argv: [String], stdin: String? = nil) async throws -> Interop.Output {
        try await Interop.run("/usr/bin/env", ["ip", "netns", "exec", netns] + argv, stdin: stdin)
    }

    /// The last `lines` lines of each component's output (control plane replicas and
    /// ztunnels), for a failure message: the lab is removed when the test ends.
    func componentLogs(lines: Int = 25) -> String {
        let replicas = (0..<(lab.record?.controlPlane ?? LabControlPlane()).replicas).map(LabControlPlane.name(replica:))
        return (replicas + topology.nodes.map { "ztunnel-\($0.name)" }).map { tail($0, lines: lines) }.joined(separator: "\n")
    }

    /// `curl` from `pod` to `url`: curl's exit status and the HTTP status (000 when none).
    func curl(from pod: String, _ url: String) async throws -> (exit: Int32, http: String) {
        let output = try await run(netns: self.pod(pod).netns, ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", url])
        return (output.status, output.stdout)
    }

    /// The Prometheus page of a node's ztunnel, parsed by prometheus_client (the independent parser).
    func metrics(node: String) async throws -> [MetricSample] {
        let page = try await run(netns: self.node(node).netns, ["curl", "-sf", "http://127.0.0.1:15020/stats/prometheus"])
        #expect(page.status == 0, "metrics page: \(page.combined)")
        guard let python = Interop.python else {
            Issue.record("the interop venv is missing (scripts/test creates it)")
            return []
        }
        let parsed = try await Interop.run(python, [Interop.script("prometheus_samples.py")], stdin: page.stdout)
        #expect(parsed.status == 0, "prometheus_client could not parse the page: \(parsed.stderr)")
        return parsed.stdout.split(separator: "\n").compactMap { line in
            try? JSONDecoder().decode(MetricSample.self, from: Data(line.utf8))
        }
    }

    /// The last `lines` lines of a component's or pod's output (for failure messages).
    func tail(_ name: String, lines: Int = 30) -> String {
        let text = (try? lab.logs(name)) ?? "(no log)"
        return "--- \(name) ---\n" + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// A node's ztunnel `/config_dump` (admin port, from inside the node's namespace).
    func configDump(node: String) async throws -> [String: Any] {
        let page = try await run(netns: self.node(node).netns, ["curl", "-sf", "http://127.0.0.1:15000/config_dump"])
        return (try? JSONSerialization.jsonObject(with: Data(page.stdout.utf8))) as? [String: Any] ?? [:]
    }

    /// The version of every xDS resource a node's ztunnel holds (admin `/debug/xds`): type URL → name → version.
    func xdsVersions(node: String) async throws -> [String: [String: String]] {
        let page = try await run(netns: self.node(node).netns, ["curl", "-sf", "http://127.0.0.1:15000/debug/xds"])
        return (try? JSONDecoder().decode([String: [String: String]].self, from: Data(page.stdout.utf8))) ?? [:]
    }

    /// The certificates a node's ztunnel holds: identity → (expires, renew at), from `/config_dump`.
    func certificates(node: String) async throws -> [String: (expiresAt: Date, renewAt: Date)] {
        let formatter = ISO8601DateFormatter()
        var held: [String: (expiresAt: Date, renewAt: Date)] = [:]
        for entry in try await configDump(node: node)["certificates"] as? [[String: Any]] ?? [] {
            guard let identity = entry["identity"] as? String, let expires = (entry["expiresAt"] as? String).flatMap(formatter.date(from:)),
                  let renew = (entry["renewAt"] as? String).flatMap(formatter.date(from:)) else { continue }
            held[identity] = (expires, renew)
        }
        return held
    }

    /// The sum of a metric's samples on a node's ztunnel (0 when absent).
    func metricTotal(node: String, _ name: String) async throws -> Double {
        try await metrics(node: node).filter { $0.name == name }.reduce(0) { $0 + $1.value }
    }

    /// Replaces one manifest file of the scratch copy and applies the directory.
    func apply(file: String, _ text: String) async throws {
        try text.write(toFile: manifests + "/" + file, atomically: true, encoding: .utf8)
        let lab = self.lab, manifests = self.manifests
        _ = try await Interop.onThread { try lab.apply(manifests: manifests) }
    }

    /// Fixtures/ambient: adds mesh/intruder to the principals server-b's policy allows, applies it, and
    /// reports whether the intruder then reaches server-b (the policy change took effect).
    func admitIntruder() async throws -> Bool {
        let policies = try String(contentsOfFile: manifests + "/policies.yaml", encoding: .utf8)
        try await apply(file: "policies.yaml", policies.replacingOccurrences(
            of: #"principals: ["cluster.local/ns/mesh/sa/client"]"#,
            with: #"principals: ["cluster.local/ns/mesh/sa/client", "cluster.local/ns/mesh/sa/intruder"]"#))
        return await eventuallyOK(from: "mesh/intruder", "http://\(pod("mesh/server-b").address):8080/")
    }

    /// Whether `curl` from `pod` to `url` answers 200 within the `eventually` bound (the mesh converges).
    func eventuallyOK(from pod: String, _ url: String) async -> Bool {
        await eventually { (try? await self.curl(from: pod, url))?.http == "200" }
    }

    /// Removes one manifest file of the scratch copy and applies the directory.
    func remove(file: String) async throws {
        try FileManager.default.removeItem(atPath: manifests + "/" + file)
        let lab = self.lab, manifests = self.manifests
        _ = try await Interop.onThread { try lab.apply(manifests: manifests) }
    }
}

/// One sample of a Prometheus page.
struct MetricSample: Decodable {
    var name: String
    var labels: [String: String]
    var value: Double
}
