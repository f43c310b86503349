import Foundation
@testable import MeshLab
import MeshTestSupport
import Testing

/// The lab's pure parts: what a manifest's containers become, and how it reads
/// which ports listen in a pod (no namespaces needed).
@Suite struct LabTopologyTests {
    @Test("a container keeps its TCP containerPorts (not UDP ones): the lab waits for them before it calls the pod started")
    func containerPorts() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lab-topology-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            apiVersion: v1
            kind: Node
            metadata: {name: node-a}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: server, namespace: default}
            spec:
              nodeName: node-a
              containers:
              - name: http
                command: ["python3", "-m", "http.server", "8080"]
                ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}, {containerPort: 9090}]
              - {name: idle, command: ["sleep", "infinity"]}
            """.write(toFile: directory + "/all.yaml", atomically: true, encoding: .utf8)
        let topology = try Lab.topology(manifests: directory)
        let containers = try #require(topology.pod("default/server")).containers
        #expect(containers.map(\.ports) == [[8080, 9090], []])
    }

    @Test("a lab recorded before containers kept their ports still decodes, with none to wait for")
    func recordWithoutPorts() throws {
        let old = #"{"name": "http", "argv": ["python3", "-m", "http.server"], "env": {"A": "1"}}"#
        let container = try JSONDecoder().decode(LabTopology.Container.self, from: Data(old.utf8))
        #expect(container == LabTopology.Container(name: "http", argv: ["python3", "-m", "http.server"], env: ["A": "1"]))
        let missingName = #"{"argv": [], "env": {}}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(LabTopology.Container.self, from: Data(missingName.utf8)) }
    }

    @Test("the listening ports are read from `ss -Hltn`, IPv4, IPv6 and wildcard alike")
    func listeningFromSS() {
        let output = """
            LISTEN 0      5      0.0.0.0:8082 0.0.0.0:*
            LISTEN 0      5        [::1]:8081    [::]:*
            LISTEN 0      4096         *:15001      *:*
            garbage
            """
        #expect(Lab.listeningPorts(ss: output) == [8082, 8081, 15001])
        #expect(Lab.listeningPorts(ss: "").isEmpty)
    }
}
