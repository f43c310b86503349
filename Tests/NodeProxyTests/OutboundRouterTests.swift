import HBONE
import Logging
import MeshTestSupport
import NodeProxy
import Testing
import XDSClient

/// `OutboundRouter.route`: how a Service VIP or name picks an endpoint.
@Suite struct OutboundRouterTests {
    private static let key = "demo/echo.demo.svc.cluster.local"

    private static func pod(_ name: String, ip: String, healthy: Bool = true) -> Workload {
        Workload(uid: "cluster//v1/Pod/demo/\(name)", name: name, namespace: "demo", serviceAccount: "echo", workloadIPs: [ip],
                 node: "node-b", healthy: healthy, services: [key: [80: 8080]])
    }

    private static func router(_ store: WorkloadStore) throws -> OutboundRouter {
        let pki = try ServerClientPKI()
        return OutboundRouter(store: store, client: HBONEClient(tls: try pki.tls(pki.clientID)), sourceIdentity: nil, logger: Logger(label: "test"))
    }

    private static let service = Service(name: "echo", namespace: "demo", hostname: "echo.demo.svc.cluster.local",
                                         vips: [NetworkAddress(network: "", address: "10.96.0.10")], ports: [80: 8080])

    @Test("a Service's connections go round robin over its ready endpoints only; an endpoint that becomes ready again is picked again")
    func readyEndpointsOnly() throws {
        let store = try WorkloadStore(WorkloadSnapshot(
            workloads: [Self.pod("echo-1", ip: "10.244.1.1"), Self.pod("echo-2", ip: "10.244.1.2", healthy: false), Self.pod("echo-3", ip: "10.244.1.3")],
            services: [Self.service]))
        let router = try Self.router(store)
        let picked = try (0..<6).map { _ in try router.route(host: "10.96.0.10", port: 80).address }
        #expect(picked == ["10.244.1.1", "10.244.1.3", "10.244.1.1", "10.244.1.3", "10.244.1.1", "10.244.1.3"])
        #expect(try router.route(host: "echo.demo.svc.cluster.local", port: 80).port == 8080)
        // A pod that is not ready is still reachable at its own address.
        #expect(try router.route(host: "10.244.1.2", port: 8080).workload?.name == "echo-2")

        store.update(WorkloadStoreChange(upsertedWorkloads: [Self.pod("echo-2", ip: "10.244.1.2")]))
        let after = Set(try (0..<6).map { _ in try router.route(host: "10.96.0.10", port: 80).address })
        #expect(after == ["10.244.1.1", "10.244.1.2", "10.244.1.3"])
        // A removed workload is no endpoint any more.
        store.update(WorkloadStoreChange(removedAddresses: ["cluster//v1/Pod/demo/echo-1", "cluster//v1/Pod/demo/echo-3"]))
        #expect(store.endpoints(of: Self.service).map(\.name) == ["echo-2"])
        #expect(Set(try (0..<3).map { _ in try router.route(host: "10.96.0.10", port: 80).address }) == ["10.244.1.2"])
    }

    @Test("a Service whose endpoints are all not ready refuses the connection and says so")
    func noReadyEndpoint() throws {
        let store = try WorkloadStore(WorkloadSnapshot(workloads: [Self.pod("echo-1", ip: "10.244.1.1", healthy: false)], services: [Self.service]))
        let router = try Self.router(store)
        #expect {
            try router.route(host: "10.96.0.10", port: 80)
        } throws: { error in
            "\(error)" == "unknown destination 10.96.0.10:80 (service \(Self.key) has no ready endpoints (1 not ready))"
        }
    }

    @Test("a workload's UNHEALTHY status survives the Istio encoding both ways")
    func statusRoundTrip() throws {
        let unhealthy = Self.pod("echo-2", ip: "10.244.1.2", healthy: false)
        let proto = try unhealthy.istio()
        #expect(proto.status == .unhealthy)
        #expect(try Workload(proto) == unhealthy)
        #expect(try Workload(try Self.pod("echo-1", ip: "10.244.1.1").istio()).healthy)
    }
}
