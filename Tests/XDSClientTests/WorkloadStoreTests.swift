import Testing
import MeshIdentity
@testable import XDSClient

let demoConfig = """
workloads:
- uid: cluster1//v1/Pod/default/echo
  name: echo
  namespace: default
  serviceAccount: echo
  workloadIps: [127.0.0.12]
  node: node-b
  protocol: HBONE
  services:
    default/echo.default.svc.cluster.local: {80: 9000}
- uid: cluster1//v1/Pod/default/client
  name: client
  namespace: default
  serviceAccount: client
  workloadIps: [127.0.0.11]
  node: node-a
  protocol: HBONE
services:
- name: echo
  namespace: default
  hostname: echo.default.svc.cluster.local
  vips: [/10.96.0.10]
  ports: {80: 9000}
policies:
- name: allow-client
  namespace: default
  scope: Namespace
  action: Allow
  rules:
  - - - principals: [cluster.local/ns/default/sa/client]
        destinationPorts: [9000]
- name: deny-other-ns
  namespace: default
  scope: Global
  action: Deny
  rules:
  - - - namespaces: [blocked]
"""

@Suite("WorkloadStore and local config")
struct WorkloadStoreTests {
    @Test("a workload's identity follows its trust domain, namespace and service account; parts that make no SPIFFE ID throw why")
    func identityFollowsParts() throws {
        var workload = Workload(uid: "u", name: "web", namespace: "shop", serviceAccount: "web", workloadIPs: ["10.0.0.1"])
        #expect(try workload.identity() == SPIFFEID("spiffe://cluster.local/ns/shop/sa/web"))
        // Each part on its own: the ID made when the workload was must not outlive a change to any of them.
        workload.namespace = "store"
        #expect(try workload.identity() == SPIFFEID("spiffe://cluster.local/ns/store/sa/web"))
        workload.serviceAccount = "front"
        #expect(try workload.identity() == SPIFFEID("spiffe://cluster.local/ns/store/sa/front"))
        workload.trustDomain = "example.org"
        #expect(try workload.identity() == SPIFFEID("spiffe://example.org/ns/store/sa/front"))
        workload.serviceAccount = "a%20b"
        #expect(throws: SPIFFEIDError.self) { try workload.identity() }
        workload.serviceAccount = "b"
        #expect(try workload.identity() == SPIFFEID("spiffe://example.org/ns/store/sa/b"))
        #expect(workload == Workload(uid: "u", name: "web", namespace: "store", serviceAccount: "b", trustDomain: "example.org", workloadIPs: ["10.0.0.1"]))
    }

    @Test("the local config loads into indexed state")
    func load() throws {
        let store = try WorkloadStore(LocalConfig.parse(demoConfig))
        let echo = try #require(store.workload(address: "127.0.0.12"))
        #expect(echo.uid == "cluster1//v1/Pod/default/echo")
        #expect(echo.tunnelProtocol == .hbone)
        #expect(echo.node == "node-b")
        #expect(try echo.identity() == SPIFFEID("spiffe://cluster.local/ns/default/sa/echo"))
        #expect(store.workload(uid: "cluster1//v1/Pod/default/client")?.workloadIPs == ["127.0.0.11"])
        let service = try #require(store.service(vip: "10.96.0.10"))
        #expect(service.ports == [80: 9000])
        #expect(store.service(hostname: "echo.default.svc.cluster.local") == service)
        #expect(store.endpoints(of: service).map(\.name) == ["echo"])
        #expect(store.workload(address: "127.0.0.99") == nil)
    }

    @Test("L4 policy: allow by principal and port, deny otherwise, DENY first")
    func policy() throws {
        let store = try WorkloadStore(LocalConfig.parse(demoConfig))
        let echo = try #require(store.workload(address: "127.0.0.12"))
        let client = try SPIFFEID("spiffe://cluster.local/ns/default/sa/client")
        #expect(store.authorize(L4Connection(source: client, destination: echo, destinationPort: 9000)) == .allow(policy: "default/allow-client"))
        #expect(!store.authorize(L4Connection(source: client, destination: echo, destinationPort: 9001)).isAllowed)
        #expect(!store.authorize(L4Connection(source: try SPIFFEID("spiffe://cluster.local/ns/default/sa/other"), destination: echo, destinationPort: 9000)).isAllowed)
        #expect(store.authorize(L4Connection(source: try SPIFFEID("spiffe://cluster.local/ns/blocked/sa/client"), destination: echo, destinationPort: 9000)) == .deny(reason: "denied by policy default/deny-other-ns"))
        #expect(!store.authorize(L4Connection(source: nil, destination: echo, destinationPort: 9000)).isAllowed)
    }

    @Test("principal globs")
    func globs() {
        #expect(AuthorizationMatch.glob("*", "x"))
        #expect(AuthorizationMatch.glob("cluster.local/ns/default/*", "cluster.local/ns/default/sa/a"))
        #expect(AuthorizationMatch.glob("*/sa/a", "cluster.local/ns/default/sa/a"))
        #expect(AuthorizationMatch.glob("spiffe://cluster.local/ns/default/sa/a", "cluster.local/ns/default/sa/a"))
        #expect(!AuthorizationMatch.glob("cluster.local/ns/default/sa/a", "cluster.local/ns/default/sa/b"))
    }

    @Test("a bad snapshot is refused with a typed error and leaves the previous state in place")
    func atomic() throws {
        let store = try WorkloadStore(LocalConfig.parse(demoConfig))
        let version = store.version
        var bad = store.snapshot
        bad.workloads.append(Workload(uid: "cluster1//v1/Pod/default/echo", name: "dup", namespace: "default", workloadIPs: ["127.0.0.50"]))
        #expect(throws: WorkloadStoreError.duplicateUID("cluster1//v1/Pod/default/echo")) { try store.apply(bad) }
        var clash = store.snapshot
        clash.workloads.append(Workload(uid: "other", name: "clash", namespace: "default", workloadIPs: ["127.0.0.12"]))
        #expect(throws: WorkloadStoreError.duplicateAddress("/127.0.0.12")) { try store.apply(clash) }
        #expect(store.version == version)
        #expect(store.workload(address: "127.0.0.50") == nil)
        #expect(store.workload(address: "127.0.0.12")?.name == "echo")
    }

    @Test("bad local config is a clear error", arguments: [
        ("workloads: [{name: x, namespace: y}]", "uid"),
        ("workloads: [{uid: u, name: x, namespace: y, workloadIps: [300.1.1.1]}]", "300.1.1.1"),
        ("services: [{name: s, namespace: n, hostname: h, vips: [net/notanip]}]", "notanip"),
        ("workloads: [{uid: u, name: x, namespace: y, protocol: QUIC}]", "protocol"),
        ("policies: [{name: p, namespace: n, action: Maybe}]", "action"),
        ("workloads: 3", "workloads"),
    ])
    func badInput(yaml: String, mentions: String) {
        do {
            try WorkloadStore().apply(LocalConfig.parse(yaml))
            Issue.record("expected an error for \(yaml)")
        } catch {
            #expect("\(error)".contains(mentions), "\(error)")
        }
    }

    @Test("incremental updates: an address moves to the newer workload; removing the older one keeps it")
    func incrementalAddressOwnership() throws {
        let store = try WorkloadStore()
        let old = Workload(uid: "c//v1/Pod/default/old", name: "old", namespace: "default", workloadIPs: ["10.0.0.5"])
        let new = Workload(uid: "c//v1/Pod/default/new", name: "new", namespace: "default", workloadIPs: ["10.0.0.5"])
        store.update(WorkloadStoreChange(upsertedWorkloads: [old]))
        store.update(WorkloadStoreChange(upsertedWorkloads: [new]))
        #expect(store.workload(address: "10.0.0.5")?.uid == new.uid)
        store.update(WorkloadStoreChange(removedAddresses: [old.uid]))
        #expect(store.workload(address: "10.0.0.5")?.uid == new.uid)
        #expect(store.workload(uid: old.uid) == nil)
        let version = store.version
        store.update(WorkloadStoreChange())
        #expect(store.version == version, "an empty change is not a new version")
    }
}
