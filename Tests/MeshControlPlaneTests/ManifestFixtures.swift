import Foundation
import MeshControlPlane
import PolicyEngine

/// Manifests shared by the control-plane tests: two nodes, an ambient
/// namespace with a client and two echo replicas, an opted-out pod, a
/// Service with a named target port, and policies.
enum Manifests {
    static let cluster = """
    apiVersion: v1
    kind: Node
    metadata: {name: node-a}
    ---
    apiVersion: v1
    kind: Node
    metadata: {name: node-b}
    spec: {podCIDR: 10.244.7.0/24}
    ---
    apiVersion: v1
    kind: Namespace
    metadata:
      name: demo
      labels: {istio.io/dataplane-mode: ambient}
    ---
    apiVersion: v1
    kind: ServiceAccount
    metadata: {name: client, namespace: demo}
    ---
    apiVersion: v1
    kind: ServiceAccount
    metadata: {name: echo, namespace: demo}
    """

    static func pod(_ name: String, namespace: String = "demo", node: String, account: String = "echo", labels: [String: String] = ["app": "echo"],
                    ip: String? = nil, phase: String? = nil, port: Int = 8080, portName: String = "http") -> String {
        let labelText = labels.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        let status = [ip.map { "podIP: \($0)" }, phase.map { "phase: \($0)" }].compactMap { $0 }.joined(separator: ", ")
        return """
        apiVersion: v1
        kind: Pod
        metadata:
          name: \(name)
          namespace: \(namespace)
          labels: {\(labelText)}
        spec:
          nodeName: \(node)
          serviceAccountName: \(account)
          containers:
          - name: main
            command: ["python3", "-m", "http.server", "\(port)"]
            env: [{name: GREETING, value: hi}]
            ports: [{name: \(portName), containerPort: \(port)}]
        \(status.isEmpty ? "" : "status: {\(status)}")
        """
    }

    static let workloads = [
        pod("client", node: "node-a", account: "client", labels: ["app": "client"]),
        pod("echo-1", node: "node-a", labels: ["app": "echo", "version": "v1"]),
        pod("echo-2", node: "node-b", labels: ["app": "echo", "version": "v2"], ip: "10.244.7.50"),
        pod("legacy", node: "node-b", account: "default", labels: ["app": "legacy", "istio.io/dataplane-mode": "none"]),
    ].joined(separator: "\n---\n")

    static let service = """
    apiVersion: v1
    kind: Service
    metadata: {name: echo, namespace: demo}
    spec:
      selector: {app: echo}
      ports:
      - {name: http, port: 80, targetPort: http}
      - {name: admin, port: 9000, targetPort: 9001}
    """

    static let policy = """
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: echo-allow, namespace: demo}
    spec:
      selector: {matchLabels: {app: echo}}
      action: ALLOW
      rules:
      - from: [{source: {principals: ["cluster.local/ns/demo/sa/client"], ipBlocks: ["10.244.0.0/16"]}}]
        to: [{operation: {ports: ["8080"]}}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: deny-legacy, namespace: demo}
    spec:
      action: DENY
      rules:
      - from: [{source: {namespaces: ["legacy"]}}]
    """

    static var all: [(file: String, text: String)] {
        [("cluster.yaml", cluster), ("workloads.yaml", workloads), ("service.yaml", service), ("policy.yaml", policy)]
    }

    static func load(_ extra: [(file: String, text: String)] = []) throws -> ClusterState {
        try ClusterManifestLoader().load(all + extra)
    }

    /// Writes `files` into a new temporary directory.
    static func directory(_ files: [(file: String, text: String)] = all) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("controlplane-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in files {
            let url = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return dir
    }
}
