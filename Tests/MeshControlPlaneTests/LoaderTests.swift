import Foundation
import MeshControlPlane
import PolicyEngine
import Testing

@Suite("Manifest loading: a directory tree, all or nothing, errors that point at the field")
struct LoaderTests {
    private func refusal(_ extra: [(file: String, text: String)]) -> PolicyLoadError? {
        do {
            _ = try Manifests.load(extra)
            return nil
        } catch let error as PolicyLoadError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test("reads a nested directory tree of multi-document files and List wrappers; hidden entries are left out")
    func tree() throws {
        let dir = try Manifests.directory(Manifests.all + [
            ("nested/deeper/extra.yml", """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: ServiceAccount
              metadata: {name: batch, namespace: demo}
            """),
            ("..data/ignored.yaml", "this: [is not: valid"),
            ("README.txt", "not yaml"),
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        let state = try ClusterManifestLoader().load(directory: dir.path)
        #expect(state.nodes.map(\.name) == ["node-a", "node-b"])
        #expect(state.pods.count == 4)
        #expect(state.serviceAccounts.map(\.name).sorted() == ["batch", "client", "echo"])
    }

    @Test("a linked directory (a mounted ConfigMap's nested items) is read once; a link loop does not hang")
    func linkedDirectories() throws {
        let dir = try Manifests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("..data/apps")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try Manifests.pod("linked", node: "node-a").write(to: data.appendingPathComponent("linked.yaml"), atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("apps").path, withDestinationPath: "..data/apps")
        try FileManager.default.createSymbolicLink(atPath: data.appendingPathComponent("loop").path, withDestinationPath: "..")
        let state = try ClusterManifestLoader().load(directory: dir.path)
        #expect(state.pods.filter { $0.name == "linked" }.count == 1)
    }

    @Test("with a cache, a reload decodes only the files that changed; removed files take their objects with them")
    func cachedReload() throws {
        let dir = try Manifests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = ManifestCache()
        let loader = ClusterManifestLoader()
        #expect(try loader.load(directory: dir.path, cache: cache).pods.count == 4)
        #expect(cache.decodedFiles == 4)
        _ = try loader.load(directory: dir.path, cache: cache)
        #expect(cache.decodedFiles == 4)
        try Manifests.pod("echo-9", node: "node-a").write(to: dir.appendingPathComponent("more.yaml"), atomically: true, encoding: .utf8)
        #expect(try loader.load(directory: dir.path, cache: cache).pods.count == 5)
        #expect(cache.decodedFiles == 5)
        // A cached file still takes part in the cross-file duplicate check.
        try Manifests.pod("echo-1", node: "node-a").write(to: dir.appendingPathComponent("more.yaml"), atomically: true, encoding: .utf8)
        #expect(throws: PolicyLoadError.self) { try loader.load(directory: dir.path, cache: cache) }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("more.yaml"))
        #expect(try loader.load(directory: dir.path, cache: cache).pods.map(\.name).sorted() == ["client", "echo-1", "echo-2", "legacy"])
        #expect(cache.decodedFiles == 6)
    }

    @Test("a reload where only pod files changed replaces those pods in the last state: the same state a full load gives, the same refusals")
    func patchedReload() throws {
        let dir = try Manifests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = ManifestCache()
        let loader = ClusterManifestLoader()
        func write(_ file: String, _ text: String) throws { try text.write(to: dir.appendingPathComponent(file), atomically: true, encoding: .utf8) }
        func reload() throws -> ClusterState {
            let patched = try loader.load(directory: dir.path, cache: cache)
            let full = try loader.load(directory: dir.path)
            #expect(Set(patched.pods) == Set(full.pods) && patched.pods.count == full.pods.count)
            #expect(Set(patched.policies.workloads) == Set(full.policies.workloads) && patched.policies.workloads.count == full.policies.workloads.count)
            #expect(patched.services == full.services && patched.nodes == full.nodes && patched.policies.namespaces == full.policies.namespaces)
            return patched
        }
        _ = try reload()
        #expect(cache.patchedLoads == 0)
        try write("more.yaml", Manifests.pod("echo-9", node: "node-a"))
        #expect(try reload().pods.count == 5)
        // A multi-document pod file edited in the middle: the pods after it move documents.
        try write("workloads.yaml", Manifests.workloads.replacingOccurrences(of: "version: v1", with: "version: v7"))
        #expect(try reload().pod("demo/echo-1")?.labels["version"] == "v7")
        #expect(cache.patchedLoads == 2)
        // Refused as a full load refuses: a pod defined twice, an address claimed twice, a missing namespace.
        try write("more.yaml", Manifests.pod("echo-1", node: "node-a"))
        #expect(throws: PolicyLoadError.self) { try loader.load(directory: dir.path, cache: cache) }
        try write("more.yaml", Manifests.pod("echo-9", node: "node-a", ip: "10.244.7.50"))
        let claimed = try #require(throws: PolicyLoadError.self) { try loader.load(directory: dir.path, cache: cache) }
        #expect(claimed.kind == .duplicate && claimed.fieldPath == "status.podIP" && claimed.file.hasSuffix("more.yaml"))
        try write("more.yaml", Manifests.pod("echo-9", namespace: "nowhere", node: "node-a"))
        let missing = try #require(throws: PolicyLoadError.self) { try loader.load(directory: dir.path, cache: cache) }
        #expect(missing.kind == .missingReference && missing.fieldPath == "metadata.namespace")
        // Fixed, and the file gone: the pods of the last good state, less its.
        try write("more.yaml", Manifests.pod("echo-10", node: "node-b"))
        #expect(try reload().pod("demo/echo-10") != nil)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("more.yaml"))
        #expect(try reload().pods.map(\.name).sorted() == ["client", "echo-1", "echo-2", "legacy"])
        let patches = cache.patchedLoads
        // A file with more than pods: merged in full.
        try write("service.yaml", Manifests.service.replacingOccurrences(of: "port: 80,", with: "port: 81,"))
        #expect(try reload().services.first?.ports.first?.port == 81)
        #expect(cache.patchedLoads == patches)
    }

    @Test("documents of unknown kinds are left out and listed")
    func unknownKind() throws {
        let state = try Manifests.load([("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: demo}\nspec: {}\n")])
        #expect(state.skipped == ["deploy.yaml#0 Deployment web"])
    }

    @Test("unparsable YAML names the file")
    func syntax() throws {
        let error = try #require(refusal([("broken.yaml", "apiVersion: v1\nkind: [Pod\n")]))
        #expect(error.file == "broken.yaml" && error.kind == .syntax)
    }

    @Test("an unknown field value names file, document and field path")
    func invalidValue() throws {
        let error = try #require(refusal([("pa.yaml", """
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: x, namespace: demo}
        ---
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: p, namespace: demo}
        spec: {mtls: {mode: SOMETIMES}}
        """)]))
        #expect(error.file == "pa.yaml" && error.documentIndex == 1 && error.fieldPath == "spec.mtls.mode" && error.kind == .invalidValue)
    }

    @Test("an object defined twice, in two files, is refused")
    func duplicate() throws {
        let error = try #require(refusal([("again.yaml", Manifests.pod("echo-1", node: "node-b"))]))
        #expect(error.file == "again.yaml" && error.kind == .duplicate)
    }

    @Test("two pods claiming one IP are refused at the second pod's status.podIP")
    func duplicateIP() throws {
        let error = try #require(refusal([("clash.yaml", Manifests.pod("echo-3", node: "node-b", ip: "10.244.7.50"))]))
        #expect(error.file == "clash.yaml" && error.fieldPath == "status.podIP" && error.kind == .duplicate)
        #expect(error.message.contains("demo/echo-2"))
    }

    @Test("references Kubernetes would refuse: a missing service account, namespace or node")
    func missingReferences() throws {
        let account = try #require(refusal([("a.yaml", Manifests.pod("x", node: "node-a", account: "ghost"))]))
        #expect(account.fieldPath == "spec.serviceAccountName" && account.kind == .missingReference)
        let node = try #require(refusal([("n.yaml", Manifests.pod("y", node: "node-z"))]))
        #expect(node.fieldPath == "spec.nodeName" && node.kind == .missingReference)
        let namespace = try #require(refusal([("ns.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: nowhere}\nspec: {ports: [{port: 80}]}\n")]))
        #expect(namespace.fieldPath == "metadata.namespace" && namespace.kind == .missingReference)
    }

    @Test("fields the mesh does not implement are refused, not ignored")
    func unsupported() throws {
        let error = try #require(refusal([("route.yaml", """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: r, namespace: demo}
        spec:
          parentRefs: [{kind: Service, group: "", name: echo}]
          rules: [{filters: [{type: RequestHeaderModifier}], backendRefs: [{name: echo, port: 80}]}]
        """)]))
        #expect(error.fieldPath == "spec.rules[0].filters" && error.kind == .unsupported)
    }

    @Test("a bad port and a bad address are refused with their field")
    func badScalars() throws {
        let port = try #require(refusal([("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: demo}\nspec: {ports: [{port: 70000}]}\n")]))
        #expect(port.fieldPath == "spec.ports[0].port" && port.kind == .invalidValue)
        let address = try #require(refusal([("node.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nstatus: {addresses: [{type: InternalIP, address: 300.1.1.1}]}\n")]))
        #expect(address.fieldPath == "status.addresses[0].address")
        let weight = try #require(refusal([("w.yaml", """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: r, namespace: demo}
        spec: {rules: [{backendRefs: [{name: echo, port: 80, weight: 4294967296}]}]}
        """)]))
        #expect(weight.fieldPath == "spec.rules[0].backendRefs[0].weight" && weight.kind == .invalidValue)
    }
}

@Suite("Address allocation: what manifests leave out, as Kubernetes would, stable")
struct AllocationTests {
    @Test("node CIDRs are /24s of 10.244/16, pods get addresses from their node's, services from 10.96/16; given ones are kept")
    func ranges() throws {
        let state = try Manifests.load()
        let plan = try AddressAllocator().plan(for: state)
        #expect(plan.nodeCIDRs["node-b"] == CIDR("10.244.7.0/24"))
        let a = try #require(plan.nodeCIDRs["node-a"])
        #expect(a.prefixLength == 24 && CIDR("10.244.0.0/16")!.contains(a) && a != plan.nodeCIDRs["node-b"])
        #expect(plan.podIPs["demo/echo-2"] == [IPAddress("10.244.7.50")!])
        let legacy = try #require(plan.podIPs["demo/legacy"]?.first)
        #expect(CIDR("10.244.7.0/24")!.contains(legacy) && legacy != IPAddress("10.244.7.50")!)
        #expect(plan.nodeIPs.values.allSatisfy { CIDR("172.18.0.0/16")!.contains($0) })
        #expect(Set(plan.nodeIPs.values).count == 2)
    }

    @Test("the plan is a function of the manifests: recomputed, it is the same; adding a pod whose slot is free moves no other")
    func stable() throws {
        let state = try Manifests.load()
        let plan = try AddressAllocator().plan(for: state)
        #expect(try AddressAllocator().plan(for: try Manifests.load()) == plan)
        let grown = try AddressAllocator().plan(for: try Manifests.load([("more.yaml", Manifests.pod("echo-9", node: "node-a"))]))
        for (pod, ips) in plan.podIPs { #expect(grown.podIPs[pod] == ips, "\(pod) moved") }
        #expect(grown.nodeCIDRs == plan.nodeCIDRs && grown.serviceIPs == plan.serviceIPs)
    }

    @Test("a node's wider podCIDR takes every /24 it overlaps; overlapping podCIDRs and IPv6 ranges are refused")
    func podCIDRs() throws {
        // Where node-a's /24 goes on its own, then a node-c whose /23 covers that place.
        let alone = try #require(try AddressAllocator().plan(for: try Manifests.load()).nodeCIDRs["node-a"])
        let wide = CIDR(address: alone.address.masked(to: 23), prefixLength: 23)
        try #require(!wide.contains(CIDR("10.244.7.0/24")!), "node-a's slot sits next to node-b's given CIDR; pick another fixture")
        let state = try Manifests.load([("nodes.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: node-c}\nspec: {podCIDR: \(wide)}\n")])
        let plan = try AddressAllocator().plan(for: state)
        #expect(!wide.contains(try #require(plan.nodeCIDRs["node-a"])), "node-a was given a /24 inside node-c's \(wide)")
        #expect(Set(state.pods.compactMap { plan.podIPs[$0.key]?.first }).count == state.pods.count)
        let overlapping = [("nodes.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: node-c}\nspec: {podCIDR: 10.244.7.128/25}\n")]
        #expect(throws: PolicyLoadError.self) { try Manifests.load(overlapping) }
        #expect(throws: AddressAllocationError.unsupportedRange("fd00::/48")) {
            try AddressAllocator(podRange: CIDR("fd00::/48")!).plan(for: state)
        }
    }

    @Test("pods of one node get distinct addresses even when their hashes collide, until the range is exhausted")
    func exhaustion() throws {
        let pods = (0..<260).map { Manifests.pod("p\($0)", node: "node-a") }.joined(separator: "\n---\n")
        let state = try Manifests.load([("many.yaml", pods)])
        #expect(throws: AddressAllocationError.self) { try AddressAllocator().plan(for: state) }
        let fewer = try Manifests.load([("some.yaml", (0..<200).map { Manifests.pod("p\($0)", node: "node-a") }.joined(separator: "\n---\n"))])
        let plan = try AddressAllocator().plan(for: fewer)
        let onA = fewer.pods.filter { $0.nodeName == "node-a" }.compactMap { plan.podIPs[$0.key]?.first }
        #expect(Set(onA).count == onA.count && onA.count == 202)
    }
}
