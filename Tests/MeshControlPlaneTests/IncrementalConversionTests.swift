import Foundation
import MeshControlPlane
import MeshTestSupport
import PolicyEngine
import Testing
import XDSServer

/// A set built from the previous one converts only what the changed pods
/// touch; these tests hold it to the same result as a build from scratch, over
/// a seeded series of pod edits in a cluster with everything a pod's resources
/// depend on (Services by label and by named port, selector policies in the
/// namespace and the root namespace, PeerAuthentications, a waypoint, pods
/// without addresses in node ranges small enough that allocations collide).
@Suite("Incremental conversion")
struct IncrementalConversionTests {
    struct PodSpec {
        var namespace: String
        var node: String
        var app: String
        var version: String
        var ip: String?
        var portName = "http"
        var phase: String?

        func yaml(_ name: String) -> String {
            Manifests.pod(name, namespace: namespace, node: node, account: "default", labels: ["app": app, "version": version],
                          ip: ip, phase: phase, portName: portName)
        }
    }

    static let fixed = """
    apiVersion: v1
    kind: Node
    metadata: {name: n0}
    ---
    apiVersion: v1
    kind: Node
    metadata: {name: n1}
    ---
    apiVersion: v1
    kind: Node
    metadata: {name: n2}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: a, labels: {istio.io/dataplane-mode: ambient}}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: b, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: istio-system}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: x, namespace: a}
    spec:
      selector: {app: x}
      ports: [{name: http, port: 80, targetPort: http}, {name: admin, port: 9000, targetPort: 9001}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: y, namespace: a}
    spec:
      selector: {app: y}
      ports: [{name: http, port: 80, targetPort: 8080}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: headless, namespace: a}
    spec:
      clusterIP: None
      selector: {app: x}
      ports: [{name: http, port: 80, targetPort: 8080}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: z, namespace: b}
    spec:
      selector: {app: z}
      ports: [{name: http, port: 80, targetPort: http}]
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: {name: waypoint, namespace: b, labels: {istio.io/waypoint-for: all}}
    spec:
      gatewayClassName: istio-waypoint
      listeners: [{name: mesh, port: 15008, protocol: HBONE}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: x-allow, namespace: a}
    spec:
      selector: {matchLabels: {app: x}}
      rules: [{from: [{source: {namespaces: [a]}}]}]
    ---
    apiVersion: security.istio.io/v1
    kind: AuthorizationPolicy
    metadata: {name: y-everywhere, namespace: istio-system}
    spec:
      selector: {matchLabels: {app: y}}
      action: DENY
      rules: [{to: [{operation: {ports: ["9999"]}}]}]
    ---
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: x-admin, namespace: a}
    spec:
      selector: {matchLabels: {app: x}}
      portLevelMtls: {"9001": {mode: STRICT}}
    ---
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: strict, namespace: b}
    spec: {mtls: {mode: STRICT}}
    """

    /// /27 node ranges: 29 slots for about 15 pods a node, so allocations collide and move.
    let allocator = AddressAllocator(nodeCIDRPrefixLength: 27)

    func state(_ pods: [String: PodSpec]) throws -> ClusterState {
        let podText = pods.sorted { $0.key < $1.key }.map { $0.value.yaml($0.key) }.joined(separator: "\n---\n")
        return try ClusterManifestLoader().load([("fixed.yaml", Self.fixed), ("pods.yaml", podText)])
    }

    /// Where the edits go: one multi-document file decoded anew each time (every pod a
    /// new value, in file order), or a directory with a file per pod read through a
    /// ``ManifestCache`` (the pods of untouched files kept, changed ones patched in).
    enum Layout: String, CaseIterable, Sendable {
        case oneFile, filePerPod
    }

    @Test("a seeded series of pod edits: each build from the previous one equals a build from scratch, and names exactly its changes",
          arguments: Layout.allCases)
    func podEdits(layout: Layout) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("incremental-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("pods"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.fixed.write(to: directory.appendingPathComponent("fixed.yaml"), atomically: true, encoding: .utf8)
        let cache = ManifestCache()
        var random = SeededGenerator(seed: 20_261_207)
        let apps = ["x", "y", "z", "w"]
        var pods: [String: PodSpec] = [:]
        var serial = 0
        func newPod() -> (String, PodSpec) {
            serial += 1
            let namespace = ["a", "b"].randomElement(using: &random)!
            return ("p\(serial)", PodSpec(namespace: namespace, node: "n\(Int.random(in: 0..<3, using: &random))", app: apps.randomElement(using: &random)!,
                                          version: "v1"))
        }
        for _ in 0..<40 {
            let (name, spec) = newPod()
            pods[name] = spec
        }
        func podFile(_ name: String) -> URL { directory.appendingPathComponent("pods/\(name).yaml") }
        func write(_ name: String) throws {
            if let spec = pods[name] {
                try spec.yaml(name).write(to: podFile(name), atomically: true, encoding: .utf8)
            } else {
                try FileManager.default.removeItem(at: podFile(name))
            }
        }
        func load() throws -> ClusterState {
            switch layout {
            case .oneFile: return try state(pods)
            case .filePerPod: return try ClusterManifestLoader().load(directory: directory.path, cache: cache)
            }
        }
        for name in pods.keys { try write(name) }
        var previous = try MeshResourceSet(state: try load(), allocator: allocator)
        var incrementalBuilds = 0
        for step in 0..<80 {
            let names = pods.keys.sorted()
            var name = names.randomElement(using: &random)!
            switch Int.random(in: 0..<8, using: &random) {
            case 0:
                let (added, spec) = newPod()
                pods[added] = spec
                name = added
            case 1: pods[name] = nil
            case 2: pods[name]!.app = apps.randomElement(using: &random)!
            case 3: pods[name]!.version = "v\(step)"
            case 4: pods[name]!.node = "n\(Int.random(in: 0..<3, using: &random))"
            case 5: pods[name]!.phase = pods[name]!.phase == nil ? "Succeeded" : nil
            case 6: pods[name]!.portName = pods[name]!.portName == "http" ? "web" : "http"
            default:
                // A given address in the node's range (taken out of allocation), or back to allocated.
                let node = Int(pods[name]!.node.dropFirst())!
                pods[name]!.ip = pods[name]!.ip == nil ? "10.244.\(node / 8).\((node % 8) * 32 + 2 + step % 28)" : nil
            }
            try write(name)
            guard let current = try? load() else {
                // Two pods given one address: refused by validation; undo.
                pods[name]!.ip = nil
                try write(name)
                continue
            }
            let next = try MeshResourceSet(state: current, allocator: allocator, reusing: previous)
            let scratch = try MeshResourceSet(state: try state(pods), allocator: allocator)
            let same = next.snapshot == scratch.snapshot  // (compared outside #expect, which would print both snapshots)
            #expect(same, "step \(step)")
            let samePlan = next.plan == scratch.plan
            #expect(samePlan, "step \(step)")
            // Converting everything is right only when more than max(16, a quarter) of the pods
            // changed (addresses moved along a run of colliding allocations).
            guard let changes = next.changes else {
                let moved = current.pods.filter { previous.plan.podIPs[$0.key] != next.plan.podIPs[$0.key] }.count
                #expect(moved + 1 > max(16, current.pods.count / MeshResourceSet.incrementalPodShare), "step \(step)")
                previous = next
                continue
            }
            incrementalBuilds += 1
            #expect(next.convertedPods < current.pods.count, "step \(step)")
            let expected = previous.snapshot.changes(to: scratch.snapshot)
            #expect(Set(changes.upserts.map { XDSResourceKey(typeURL: $0.typeURL, name: $0.name) })
                == Set(expected.upserts.map { XDSResourceKey(typeURL: $0.typeURL, name: $0.name) }), "step \(step)")
            #expect(Set(changes.removals) == Set(expected.removals), "step \(step)")
            previous = next
        }
        #expect(incrementalBuilds > 60)
        if layout == .filePerPod { #expect(cache.patchedLoads > 60) }
    }

    @Test("a change beyond pods converts everything, still equal to a build from scratch")
    func otherChange() throws {
        let pods = ["p1": PodSpec(namespace: "a", node: "n0", app: "x", version: "v1"), "p2": PodSpec(namespace: "b", node: "n1", app: "z", version: "v1")]
        let first = try MeshResourceSet(state: try state(pods), allocator: allocator)
        var changed = try state(pods)
        changed.services = changed.services.map { service in
            var service = service
            if service.name == "y" { service.selector = ["app": "x"] }
            return service
        }
        let next = try MeshResourceSet(state: changed, allocator: allocator, reusing: first)
        #expect(next.changes == nil && next.convertedPods == changed.pods.count)
        #expect(next.snapshot == (try MeshResourceSet(state: changed, allocator: allocator)).snapshot)
        #expect(!first.snapshot.changes(to: next.snapshot).upserts.isEmpty)
    }
}
