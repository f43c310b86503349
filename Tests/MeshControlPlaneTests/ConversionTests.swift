import Foundation
import MeshProto
import PolicyEngine
import SwiftProtobuf
import Testing
@testable import MeshControlPlane
import XDSClient
import XDSServer
import MeshIdentity

/// The converters of one cluster state, wired as MeshResourceSet wires them.
struct Converters {
    let plan: AddressPlan
    let endpoints: ServiceEndpoints
    let istio: IstioResources
    let envoy: EnvoyResources

    init(_ state: ClusterState) throws {
        plan = try AddressAllocator().plan(for: state)
        endpoints = ServiceEndpoints(state: state, plan: plan)
        istio = IstioResources(state: state, plan: plan, endpoints: endpoints)
        envoy = EnvoyResources(state: state, plan: plan, endpoints: endpoints)
    }
}

@Suite("Conversion: manifests to Istio and Envoy resources, object by object")
struct ConversionTests {
    let state: ClusterState
    let plan: AddressPlan
    let istio: IstioResources
    let envoy: EnvoyResources

    init() throws {
        state = try Manifests.load()
        let converters = try Converters(state)
        plan = converters.plan
        istio = converters.istio
        envoy = converters.envoy
    }

    private func pod(_ name: String) throws -> ClusterPod { try #require(state.pod("demo/\(name)")) }
    private var echo: ClusterService { get throws { try #require(state.service(namespace: "demo", name: "echo")) } }

    @Test("a pod becomes a Workload with its uid, allocated address, node, identity and canonical labels")
    func workload() throws {
        let w = try #require(istio.workload(try pod("echo-1")))
        #expect(w.uid == "Kubernetes//Pod/demo/echo-1")
        #expect(w.name == "echo-1" && w.namespace == "demo" && w.node == "node-a")
        #expect(w.serviceAccount == "echo" && w.trustDomain == "cluster.local")
        #expect(w.canonicalName == "echo" && w.canonicalRevision == "v1")
        #expect(w.workloadType == .pod && w.clusterID == "Kubernetes")
        let ip = try #require(plan.podIPs["demo/echo-1"]?.first)
        #expect(w.addresses == [Data(ip.bytes)])
        #expect(try #require(plan.nodeCIDRs["node-a"]).contains(ip))
    }

    @Test("enrollment: an ambient namespace's pods use HBONE; `istio.io/dataplane-mode: none` opts a pod out")
    func enrollment() throws {
        #expect(istio.workload(try pod("echo-1"))?.tunnelProtocol == .hbone)
        #expect(istio.workload(try pod("legacy"))?.tunnelProtocol == Istio_Workload_TunnelProtocol.none)
        #expect(AmbientEnrollment.isEnrolled(try pod("client"), in: state))
        #expect(!AmbientEnrollment.isEnrolled(try pod("legacy"), in: state))
    }

    @Test("a pod's status.podIP is kept; the Workload lists the Services it backs with the resolved named target port")
    func serviceMembership() throws {
        let w = try #require(istio.workload(try pod("echo-2")))
        #expect(w.addresses == [Data([10, 244, 7, 50])])
        let ports = try #require(w.services["demo/echo.demo.svc.cluster.local"]).ports
        #expect(ports.map { [$0.servicePort, $0.targetPort] } == [[80, 8080], [9000, 9001]])
        #expect(istio.workload(try pod("client"))?.services.isEmpty == true)
    }

    @Test("a selector policy is named in the authorization_policies of the pods it selects only; from the root namespace, in every namespace")
    func policyBinding() throws {
        #expect(istio.workload(try pod("echo-1"))?.authorizationPolicies == ["demo/echo-allow"])
        #expect(istio.workload(try pod("client"))?.authorizationPolicies == [])
        let root = [("root.yaml", """
        apiVersion: v1
        kind: Namespace
        metadata: {name: istio-system}
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: mesh-echo, namespace: istio-system}
        spec:
          selector: {matchLabels: {app: echo}}
          action: DENY
          rules: [{from: [{source: {namespaces: [legacy]}}]}]
        """)]
        let state = try Manifests.load(root)
        let istio = try Converters(state).istio
        #expect(istio.workload(try #require(state.pod("demo/echo-1")))?.authorizationPolicies == ["demo/echo-allow", "istio-system/mesh-echo"])
        #expect(istio.workload(try #require(state.pod("demo/client")))?.authorizationPolicies == [])
    }

    @Test("pods on the node's network and pods that ended are not mesh workloads, and do not claim addresses")
    func hostNetworkAndEnded() throws {
        let extra = [("special.yaml", """
        apiVersion: v1
        kind: Pod
        metadata: {name: agent-a, namespace: demo}
        spec: {nodeName: node-a, hostNetwork: true, containers: [{name: c, image: x}]}
        status: {podIP: 172.18.0.2}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: agent-b, namespace: demo}
        spec: {nodeName: node-b, hostNetwork: true, containers: [{name: c, image: x}]}
        status: {podIP: 172.18.0.2}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: job, namespace: demo, labels: {app: echo}}
        spec: {nodeName: node-b, containers: [{name: c, image: x}]}
        status: {phase: Succeeded, podIP: 10.244.7.50}
        """)]
        let state = try Manifests.load(extra)
        let converters = try Converters(state)
        for name in ["agent-a", "agent-b", "job"] { #expect(converters.istio.workload(try #require(state.pod("demo/\(name)"))) == nil, "\(name)") }
        #expect(converters.endpoints.endpoints(service: "demo/echo", port: 80).map(\.pod) == ["demo/echo-1", "demo/echo-2"])
    }

    @Test("a pod whose Ready condition is False stays a workload of its Services but UNHEALTHY, and its EDS endpoint unhealthy; True or no condition is HEALTHY; another status value is refused, naming the field")
    func readiness() throws {
        let notReady = [("ready.yaml", """
        apiVersion: v1
        kind: Pod
        metadata: {name: echo-3, namespace: demo, labels: {app: echo}}
        spec: {nodeName: node-b, serviceAccountName: echo, containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
        status: {conditions: [{type: PodScheduled, status: "True"}, {type: Ready, status: "False"}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: echo-4, namespace: demo, labels: {app: echo}}
        spec: {nodeName: node-b, serviceAccountName: echo, containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
        status: {conditions: [{type: Ready, status: "True"}]}
        """)]
        let state = try Manifests.load(notReady)
        let converters = try Converters(state)
        let podThree = try #require(state.pod("demo/echo-3")), podFour = try #require(state.pod("demo/echo-4"))
        let three = try #require(converters.istio.workload(podThree))
        #expect(three.status == .unhealthy)
        #expect(three.services["demo/echo.demo.svc.cluster.local"] != nil, "still backs the Service; ztunnel skips it")
        #expect(converters.istio.workload(podFour)?.status == .healthy)
        #expect(converters.istio.workload(try pod("echo-1"))?.status == .healthy)
        let endpoints = converters.endpoints.endpoints(service: "demo/echo", port: 80)
        #expect(endpoints.map(\.pod) == ["demo/echo-1", "demo/echo-2", "demo/echo-3", "demo/echo-4"])
        #expect(endpoints.map(\.ready) == [true, true, false, true])
        let echoService = try #require(state.services.first { $0.key == "demo/echo" })
        let eds = converters.envoy.loadAssignment(echoService, port: 80)
        #expect(eds.endpoints.flatMap(\.lbEndpoints).map(\.healthStatus) == [.healthy, .healthy, .unhealthy, .healthy])

        let bad = [("bad.yaml", """
        apiVersion: v1
        kind: Pod
        metadata: {name: echo-5, namespace: demo}
        spec: {nodeName: node-b, containers: [{name: c, image: x}]}
        status: {conditions: [{type: Ready, status: "Maybe"}]}
        """)]
        #expect {
            try Manifests.load(bad)
        } throws: { error in
            "\(error)".contains("bad.yaml") && "\(error)".contains("'Maybe' is not a condition status") && "\(error)".contains("status")
        }
    }

    @Test("a Service becomes an Istio Service: hostname, allocated VIP from 10.96/16, ports (0 for a named target)")
    func service() throws {
        let s = istio.service(try echo)
        #expect(s.hostname == "echo.demo.svc.cluster.local")
        let vip = try #require(plan.serviceIPs["demo/echo"])
        #expect(CIDR("10.96.0.0/16")!.contains(vip))
        #expect(s.addresses.map(\.address) == [Data(vip.bytes)])
        #expect(s.ports.map { [$0.servicePort, $0.targetPort] } == [[80, 0], [9000, 9001]])
        #expect(!s.hasWaypoint)
    }

    @Test("AuthorizationPolicy: selector scope, principals, ipBlocks as CIDRs, ports; round-trips through PolicyEngine's decoder")
    func authorization() throws {
        let all = Dictionary(uniqueKeysWithValues: try istio.authorizations().map { ($0.name, $0.authorization) })
        let allow = try #require(all["demo/echo-allow"])
        #expect(allow.scope == .workloadSelector && allow.action == .allow)
        // Each source field is its own clause of the group (they all must hold).
        let matches = try #require(allow.groups.first?.rules).flatMap(\.matches)
        #expect(matches.flatMap(\.principals).map(\.exact) == ["cluster.local/ns/demo/sa/client"])
        #expect(matches.flatMap(\.destinationPorts) == [8080])
        let cidrRule = try #require(allow.groups.first?.rules.first { !$0.matches.flatMap(\.sourceIps).isEmpty })
        #expect(cidrRule.matches.flatMap(\.sourceIps).map { [$0.address, Data([UInt8($0.length)])] } == [[Data([10, 244, 0, 0]), Data([16])]])
        let deny = try #require(all["demo/deny-legacy"])
        #expect(deny.scope == .namespace && deny.action == .deny)
        // PolicyEngine reads the resource back into the same policy it lowered.
        let policy = try #require(state.policies.authorizationPolicies.first { $0.name == "echo-allow" })
        let lowered = try #require(policy.authorization(for: .l4))
        let decoded = try IstioAuthorization(allow, boundWorkloads: [])
        #expect(decoded.groups == lowered.groups)
    }

    @Test("PeerAuthentication: the workload's policy, else its namespace's, else the mesh's decides; STRICT becomes a DENY without a peer identity")
    func peerAuthentication() throws {
        let extra = [("pa.yaml", """
        apiVersion: v1
        kind: Namespace
        metadata: {name: istio-system}
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {name: other}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: lone, namespace: other}
        spec: {nodeName: node-a, containers: [{name: c, image: x}]}
        ---
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: mesh, namespace: istio-system}
        spec: {mtls: {mode: STRICT}}
        ---
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: relaxed, namespace: demo}
        spec: {mtls: {mode: PERMISSIVE}}
        ---
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: echo-admin, namespace: demo}
        spec:
          selector: {matchLabels: {app: echo}}
          portLevelMtls: {"8443": {mode: STRICT}}
        """)]
        let state = try Manifests.load(extra)
        let istio = try Converters(state).istio
        func policies(_ key: String) throws -> [String] {
            let pod = try #require(state.pod(key))
            return try #require(istio.workload(pod)).authorizationPolicies
        }
        // The namespace's PERMISSIVE overrides the mesh's STRICT.
        #expect(try policies("demo/client") == [])
        // The workload policy adds a STRICT port on top of the namespace's PERMISSIVE.
        #expect(try policies("demo/echo-1") == ["demo/echo-allow", "demo/istio_converted_peer_authentication_echo-admin"])
        // No namespace or workload policy: the mesh's STRICT.
        #expect(try policies("other/lone") == ["istio-system/istio_converted_peer_authentication_mesh"])
        let converted = Dictionary(uniqueKeysWithValues: istio.peerAuthentications().map { ($0.name, $0.authorization) })
        #expect(Set(converted.keys) == ["demo/istio_converted_peer_authentication_echo-admin", "istio-system/istio_converted_peer_authentication_mesh"])
        // Enforced by XDSClient's L4 model as ztunnel would.
        let echoPolicy = try Authorization(try #require(converted["demo/istio_converted_peer_authentication_echo-admin"]))
        #expect(echoPolicy.scope == .workloadSelector && echoPolicy.action == .deny)
        let echo = Workload(uid: "u", name: "echo-1", namespace: "demo", workloadIPs: ["10.244.0.5"],
                            authorizationPolicies: ["demo/istio_converted_peer_authentication_echo-admin"])
        #expect(![echoPolicy].evaluate(L4Connection(source: nil, destination: echo, destinationPort: 8443)).isAllowed)
        #expect([echoPolicy].evaluate(L4Connection(source: nil, destination: echo, destinationPort: 8080)).isAllowed)
        let client = try SPIFFEID("spiffe://cluster.local/ns/demo/sa/client")
        #expect([echoPolicy].evaluate(L4Connection(source: client, destination: echo, destinationPort: 8443)).isAllowed)
        let meshPolicy = try Authorization(try #require(converted["istio-system/istio_converted_peer_authentication_mesh"]))
        let lone = Workload(uid: "v", name: "lone", namespace: "other", workloadIPs: ["10.244.0.6"],
                            authorizationPolicies: ["istio-system/istio_converted_peer_authentication_mesh"])
        #expect(![meshPolicy].evaluate(L4Connection(source: nil, destination: lone, destinationPort: 80)).isAllowed)
    }

    @Test("waypoints: istio.io/use-waypoint on the namespace binds pods and services to an istio-waypoint Gateway by its waypoint-for")
    func waypoint() throws {
        let extra = [("waypoint.yaml", """
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata:
          name: waypoint
          namespace: demo
          labels: {istio.io/waypoint-for: all}
        spec:
          gatewayClassName: istio-waypoint
          listeners: [{name: mesh, port: 15008, protocol: HBONE}]
        """)]
        var state = try Manifests.load(extra)
        state.policies.namespaces = state.policies.namespaces.map { ns in
            var ns = ns
            if ns.name == "demo" { ns.labels["istio.io/use-waypoint"] = "waypoint" }
            return ns
        }
        let istio = try Converters(state).istio
        let service = try #require(state.service(namespace: "demo", name: "echo"))
        let echo1 = try #require(state.pod("demo/echo-1"))
        let w = try #require(istio.workload(echo1))
        #expect(w.waypoint.hostname.hostname == "waypoint.demo.svc.cluster.local" && w.waypoint.hboneMtlsPort == 15008)
        #expect(istio.service(service).waypoint.hostname.namespace == "demo")
        // A pod label `none` opts out of the namespace's waypoint.
        var pod = try #require(state.pod("demo/echo-2"))
        pod.labels["istio.io/use-waypoint"] = "none"
        #expect(istio.workload(pod)?.hasWaypoint == false)
    }

    @Test("endpoints: derived from the selector, or taken from EndpointSlices when the Service has any")
    func endpoints() throws {
        let derived = ServiceEndpoints(state: state, plan: plan).endpoints(service: "demo/echo", port: 80)
        #expect(derived.map(\.pod) == ["demo/echo-1", "demo/echo-2"])
        #expect(derived.allSatisfy { $0.targetPort == 8080 })
        let slice = [("slice.yaml", """
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: echo-abc
          namespace: demo
          labels: {kubernetes.io/service-name: echo}
        addressType: IPv4
        ports: [{name: http, port: 8443}]
        endpoints:
        - addresses: [10.244.7.50]
          conditions: {ready: false}
          targetRef: {kind: Pod, name: echo-2}
        """)]
        let fromSlice = try Converters(try Manifests.load(slice)).endpoints.endpoints(service: "demo/echo", port: 80)
        #expect(fromSlice == [ServiceEndpoint(pod: "demo/echo-2", address: IPAddress("10.244.7.50")!, targetPort: 8443, ready: false)])
    }

    @Test("Envoy: an EDS Cluster per Service port, its endpoints with health, an API Listener with RDS and the router")
    func envoyResources() throws {
        let service = try echo
        let cluster = envoy.cluster(service, port: 80)
        #expect(cluster.name == "outbound|80||echo.demo.svc.cluster.local")
        #expect(cluster.type == .eds && cluster.edsClusterConfig.serviceName == cluster.name && cluster.lbPolicy == .roundRobin)
        let assignment = envoy.loadAssignment(service, port: 80)
        let endpoints = try #require(assignment.endpoints.first)
        #expect(endpoints.hasLocality && endpoints.loadBalancingWeight.value == 2)
        #expect(endpoints.lbEndpoints.map { $0.endpoint.address.socketAddress.portValue } == [8080, 8080])
        #expect(endpoints.lbEndpoints.allSatisfy { $0.healthStatus == .healthy })
        let listener = try envoy.listener(service, port: 80)
        #expect(listener.name == "echo.demo.svc.cluster.local:80")
        let manager = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: listener.apiListener.apiListener)
        #expect(manager.rds.routeConfigName == "echo.demo.svc.cluster.local:80")
        #expect(manager.httpFilters.map(\.name) == ["envoy.filters.http.router"])
        let routes = envoy.routeConfiguration(service, port: 80)
        #expect(routes.virtualHosts.first?.domains.contains("echo.demo.svc.cluster.local:80") == true)
        #expect(routes.virtualHosts.first?.routes.last?.route.cluster == cluster.name)
    }

    @Test("HTTPRoute attached to a Service (GAMMA): its matches come before the default route, weights become weighted clusters")
    func httpRoute() throws {
        let extra = [("route.yaml", """
        apiVersion: v1
        kind: Service
        metadata: {name: echo-v2, namespace: demo}
        spec:
          selector: {app: echo, version: v2}
          ports: [{port: 80, targetPort: 8080}]
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: split, namespace: demo}
        spec:
          parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
          rules:
          - matches: [{path: {type: PathPrefix, value: /api}, method: GET, headers: [{name: X-Canary, value: "yes"}]}]
            backendRefs: [{name: echo, port: 80, weight: 90}, {name: echo-v2, port: 80, weight: 10}]
        """)]
        let state = try Manifests.load(extra)
        let envoy = try Converters(state).envoy
        let service = try #require(state.service(namespace: "demo", name: "echo"))
        let routes = try #require(envoy.routeConfiguration(service, port: 80).virtualHosts.first?.routes)
        // PathPrefix /api is /api itself and /api/..., not /apix.
        #expect(routes.map(\.name) == ["demo/split/0/0", "demo/split/0/0/subpath", "default"])
        #expect(routes[0].match.path == "/api" && routes[1].match.prefix == "/api/")
        let first = routes[0]
        #expect(first.match.headers.map { [$0.name, $0.exactMatch] } == [[":method", "GET"], ["x-canary", "yes"]])
        #expect(first.route.weightedClusters.clusters.map { "\($0.name)=\($0.weight.value)" }
                == ["outbound|80||echo.demo.svc.cluster.local=90", "outbound|80||echo-v2.demo.svc.cluster.local=10"])
    }

    @Test("HTTP Gateway listeners become one Listener per port; one virtual host per hostname; routes in Gateway API precedence")
    func gateway() throws {
        let extra = [("gateway.yaml", """
        apiVersion: v1
        kind: Service
        metadata: {name: headless, namespace: demo}
        spec: {clusterIP: None, selector: {app: echo}, ports: [{port: 80}]}
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: ingress, namespace: demo}
        spec:
          gatewayClassName: istio
          listeners:
          - {name: web, port: 8080, protocol: HTTP, hostname: shop.example.com}
          - {name: web2, port: 8080, protocol: HTTP, hostname: blog.example.com}
          - {name: other, port: 9090, protocol: HTTP}
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: a-catchall, namespace: demo}
        spec:
          parentRefs: [{name: ingress, sectionName: web}]
          rules: [{backendRefs: [{name: echo, port: 80}]}]
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: b-cart, namespace: demo}
        spec:
          parentRefs: [{name: ingress, port: 8080}]
          hostnames: [shop.example.com, blog.example.com]
          rules:
          - matches: [{path: {type: Exact, value: /cart}}]
            backendRefs: [{name: echo, port: 80}, {name: headless, port: 80}, {name: echo, port: 9000, weight: 0}]
        """)]
        let state = try Manifests.load(extra)
        let envoy = try Converters(state).envoy
        let gateway = try #require(state.gateways.first)
        #expect(envoy.httpPorts(gateway) == [8080, 9090])
        let listener = try envoy.gatewayListener(gateway, port: 8080)
        #expect(listener.name == "gateway/demo/ingress/8080" && listener.address.socketAddress.portValue == 8080)
        let manager = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: listener.filterChains[0].filters[0].typedConfig)
        #expect(manager.rds.routeConfigName == "gateway/demo/ingress/8080")
        let hosts = envoy.gatewayRouteConfiguration(gateway, port: 8080).virtualHosts
        #expect(hosts.map(\.domains) == [["blog.example.com"], ["shop.example.com"]])
        // The exact /cart route (from b) comes before a's catch-all, though a is older; the
        // headless and zero-weight backends are left out.
        let shop = try #require(hosts.last?.routes)
        #expect(shop.map(\.name) == ["demo/b-cart/0/0", "demo/a-catchall/0/0"])
        #expect(shop.first?.match.path == "/cart" && shop.first?.route.cluster == "outbound|80||echo.demo.svc.cluster.local")
        #expect(hosts.first?.routes.map(\.name) == ["demo/b-cart/0/0"])
        #expect(envoy.gatewayRouteConfiguration(gateway, port: 9090).virtualHosts.isEmpty)
        let set = try MeshResourceSet(state: state)
        #expect(set.snapshot.resources(ofType: XDSTypeURL.listener)["gateway/demo/ingress/8080"] != nil)
    }

    @Test("precedence is judged on the matches as written: an Exact path beats a PathPrefix of the same path; a method beats more headers")
    func precedence() throws {
        let extra = [("routes.yaml", """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: a-prefix, namespace: demo}
        spec:
          parentRefs: [{group: "", kind: Service, name: echo}]
          rules:
          - matches: [{path: {type: PathPrefix, value: /a}, headers: [{name: x, value: "1"}]}]
            backendRefs: [{name: echo, port: 80}]
          - matches: [{path: {type: Exact, value: /m}, headers: [{name: x, value: "1"}, {name: y, value: "2"}]}]
            backendRefs: [{name: echo, port: 80}]
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: b-exact, namespace: demo}
        spec:
          parentRefs: [{group: "", kind: Service, name: echo}]
          rules:
          - matches: [{path: {type: Exact, value: /a}}]
            backendRefs: [{name: echo, port: 80}]
          - matches: [{path: {type: Exact, value: /m}, method: GET}]
            backendRefs: [{name: echo, port: 80}]
        """)]
        let state = try Manifests.load(extra)
        let envoy = try Converters(state).envoy
        let service = try #require(state.service(namespace: "demo", name: "echo"))
        let names = try #require(envoy.routeConfiguration(service, port: 80).virtualHosts.first?.routes).map(\.name)
        func position(_ name: String) throws -> Int { try #require(names.firstIndex(of: name), "\(name) missing from \(names)") }
        // Exact /a (b) before PathPrefix /a with a header (a), although a is older and has more matches.
        #expect(try position("demo/b-exact/0/0") < position("demo/a-prefix/0/0"))
        #expect(try position("demo/a-prefix/0/0") < position("demo/a-prefix/0/0/subpath"))
        // Exact /m with a method (b) before Exact /m with two headers (a).
        #expect(try position("demo/b-exact/1/0") < position("demo/a-prefix/1/0"))
        #expect(names.last == "default")
        // A wider route wildcard serves a listener's specific name; a narrower listener wildcard admits its own names.
        #expect(EnvoyResources.hostnames(route: ["*.example.com"], listener: "foo.example.com") == ["foo.example.com"])
        #expect(EnvoyResources.hostnames(route: ["a.example.com", "other.org"], listener: "*.example.com") == ["a.example.com"])
        #expect(EnvoyResources.hostnames(route: [], listener: nil) == ["*"])
    }

    @Test("the resource set holds every type, and the same manifests give the same versions in a new conversion")
    func resourceSet() throws {
        let set = try MeshResourceSet(state: state)
        #expect(set.counts[XDSTypeURL.address] == 5)  // 4 pods and 1 service
        #expect(set.counts[XDSTypeURL.authorization] == 2)
        #expect(set.counts[XDSTypeURL.cluster] == 2 && set.counts[XDSTypeURL.clusterLoadAssignment] == 2)
        #expect(set.counts[XDSTypeURL.listener] == 2 && set.counts[XDSTypeURL.routeConfiguration] == 2)
        let again = try MeshResourceSet(state: try Manifests.load())
        #expect(again.snapshot == set.snapshot)
        #expect(again.snapshot.changes(to: set.snapshot).upserts.isEmpty)
        #expect(again.encodedCount == set.snapshot.resources.values.map(\.count).reduce(0, +))
    }

    @Test("a build from the previous set encodes only what changed: nothing for the same manifests, one Workload for a relabelled pod")
    func incremental() throws {
        let first = try MeshResourceSet(state: state)
        let same = try MeshResourceSet(state: try Manifests.load(), reusing: first)
        #expect(same.encodedCount == 0 && same.snapshot == first.snapshot)
        var relabelled = state
        relabelled.pods = relabelled.pods.map { pod in
            var pod = pod
            if pod.name == "client" { pod.labels["version"] = "v9" }
            return pod
        }
        let next = try MeshResourceSet(state: relabelled, reusing: first)
        #expect(next.encodedCount == 1)
        let (upserts, removals) = first.snapshot.changes(to: next.snapshot)
        #expect(upserts.map(\.name) == ["Kubernetes//Pod/demo/client"] && removals.isEmpty)
        // Equal to a build from scratch.
        #expect(next.snapshot == (try MeshResourceSet(state: relabelled)).snapshot)
    }
}
