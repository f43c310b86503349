import Foundation
import MeshProto
import PolicyEngine

/// Converts cluster objects into the Istio ambient resources ztunnel reads:
/// `istio.workload.Address` (a Workload per running pod, a Service per
/// Service) and `istio.security.Authorization` (per AuthorizationPolicy that
/// has an L4 form).
///
/// Each method converts one object, so a test can drive the conversion object
/// by object; ``MeshResourceSet`` puts them together.
public struct IstioResources: Sendable {
    public let state: ClusterState
    public let plan: AddressPlan
    public let endpoints: ServiceEndpoints
    public let options: MeshOptions
    private let servicesByKey: [String: ClusterService]
    private let selectorPolicies: [String: [AuthorizationPolicy]]
    private let namespaceLabels: [String: Labels]
    /// PeerAuthentications by namespace, in name order.
    private let peerAuthenticationsByNamespace: [String: [ClusterPeerAuthentication]]

    public init(state: ClusterState, plan: AddressPlan, endpoints: ServiceEndpoints, options: MeshOptions = MeshOptions()) {
        self.state = state
        self.plan = plan
        self.endpoints = endpoints
        self.options = options
        servicesByKey = Dictionary(state.services.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        selectorPolicies = Dictionary(grouping: state.policies.authorizationPolicies.filter { $0.targetRefs.isEmpty && $0.selector != nil }, by: \.namespace)
        namespaceLabels = Dictionary(state.policies.namespaces.map { ($0.name, $0.labels) }, uniquingKeysWith: { first, _ in first })
        peerAuthenticationsByNamespace = Dictionary(grouping: state.peerAuthentications.sorted { $0.name < $1.name }, by: \.namespace)
    }

    /// The workload uid of a pod, as istiod names it.
    public func uid(of pod: ClusterPod) -> String { options.workloadUID(of: pod) }

    /// The resource name of a Service's Address: `namespace/hostname`.
    public func addressName(of service: ClusterService) -> String { "\(service.namespace)/\(service.hostname(domain: options.domainSuffix))" }

    /// The `canonical_name` Istio derives from a pod's labels.
    public static func canonicalName(of pod: ClusterPod) -> String {
        pod.labels["service.istio.io/canonical-name"] ?? pod.labels["app.kubernetes.io/name"] ?? pod.labels["app"] ?? pod.name
    }

    /// The `canonical_revision` Istio derives from a pod's labels.
    public static func canonicalRevision(of pod: ClusterPod) -> String {
        pod.labels["service.istio.io/canonical-revision"] ?? pod.labels["app.kubernetes.io/version"] ?? pod.labels["version"] ?? "latest"
    }

    /// The Workload of a pod; nil for a pending pod (no node or no address).
    public func workload(_ pod: ClusterPod) -> Istio_Workload_Workload? {
        guard pod.isMeshCandidate, let node = pod.nodeName, let ips = plan.podIPs[pod.key], !ips.isEmpty else { return nil }
        var w = Istio_Workload_Workload()
        w.uid = uid(of: pod)
        w.name = pod.name
        w.namespace = pod.namespace
        w.addresses = ips.map { Data($0.bytes) }
        w.network = options.network
        w.node = node
        w.trustDomain = options.trustDomain
        w.serviceAccount = pod.serviceAccount
        w.canonicalName = Self.canonicalName(of: pod)
        w.canonicalRevision = Self.canonicalRevision(of: pod)
        w.workloadName = pod.name
        w.workloadType = .pod
        w.clusterID = options.clusterID
        let labels = namespaceLabels[pod.namespace] ?? Namespace(name: pod.namespace).labels
        w.tunnelProtocol = AmbientEnrollment.isEnrolled(pod, namespaceLabels: labels) ? .hbone : .none
        if let waypoint = AmbientEnrollment.waypoint(for: pod, namespaceLabels: labels, gateways: state.gateways) { w.waypoint = gatewayAddress(waypoint) }
        // As Istio: a pod that is not ready is in the mesh (reachable by its address) but its
        // Services send it nothing; ztunnel skips UNHEALTHY workloads when it picks an endpoint.
        let memberships = endpoints.byPod[pod.key] ?? []
        w.status = pod.isReady && memberships.allSatisfy(\.ready) ? .healthy : .unhealthy
        for membership in memberships {
            guard let service = servicesByKey[membership.service] else { continue }
            var p = Istio_Workload_Port()
            p.servicePort = UInt32(membership.servicePort)
            p.targetPort = UInt32(membership.targetPort)
            w.services[addressName(of: service), default: Istio_Workload_PortList()].ports.append(p)
        }
        // A selector policy applies in its own namespace, or in every namespace from the root namespace.
        let candidates = (selectorPolicies[pod.namespace] ?? []) + (pod.namespace == options.rootNamespace ? [] : selectorPolicies[options.rootNamespace] ?? [])
        let selected = candidates
            .filter { policy in policy.selector.map { LabelSelector(matchLabels: $0).matches(pod.labels) } ?? false }
            .map { "\($0.namespace)/\($0.name)" }
        let strict = peerAuthentication(of: pod).map { [$0.key] } ?? []
        w.authorizationPolicies = (selected + strict).sorted()
        return w
    }

    /// The Service of a Kubernetes Service.
    public func service(_ service: ClusterService) -> Istio_Workload_Service {
        var s = Istio_Workload_Service()
        s.name = service.name
        s.namespace = service.namespace
        s.hostname = service.hostname(domain: options.domainSuffix)
        if let vip = plan.serviceIPs[service.key] {
            var address = Istio_Workload_NetworkAddress()
            address.network = options.network
            address.address = Data(vip.bytes)
            s.addresses = [address]
        }
        s.ports = service.ports.filter { $0.protocol == .tcp }.map { port in
            var p = Istio_Workload_Port()
            p.servicePort = UInt32(port.port)
            // A named target port resolves per workload (Workload.services); 0 says so, as istiod does.
            if case .number(let n) = port.targetPort { p.targetPort = UInt32(n) }
            return p
        }
        if let waypoint = AmbientEnrollment.waypoint(for: service, in: state) { s.waypoint = gatewayAddress(waypoint) }
        return s
    }

    /// The Authorizations of the AuthorizationPolicies ztunnel enforces, by
    /// `namespace/name`; policies without an L4 form (targetRefs, AUDIT,
    /// CUSTOM) are left to waypoints, as istiod does.
    public func authorizations() throws(PolicyCompileError) -> [(name: String, authorization: Istio_Security_Authorization)] {
        var result: [(name: String, authorization: Istio_Security_Authorization)] = []
        for policy in state.policies.authorizationPolicies {
            guard let lowered = policy.authorization(for: .l4, rootNamespace: options.rootNamespace) else { continue }
            result.append(("\(policy.namespace)/\(policy.name)", try lowered.proto()))
        }
        return result
    }

    /// PeerAuthentication as ztunnel enforces it, the way istiod converts it:
    /// each pod's effective mode is its workload policy's (a selector in its
    /// namespace), else its namespace's, else the mesh's (root namespace), else
    /// PERMISSIVE; port-level modes come from the workload policy. Where the
    /// result refuses plaintext somewhere, a DENY `Authorization` of connections
    /// without a peer identity (on every port less the PERMISSIVE/DISABLE ones,
    /// or only on the STRICT ones) is listed in the pod's `authorization_policies`.
    /// It is named `istio_converted_peer_authentication_NAME` after the policy that decides.
    public func peerAuthentications() -> [(name: String, authorization: Istio_Security_Authorization)] {
        guard !peerAuthenticationsByNamespace.isEmpty else { return [] }
        var converted: [String: Istio_Security_Authorization] = [:]
        for pod in state.pods where pod.isMeshCandidate {
            guard let (key, policy) = peerAuthentication(of: pod) else { continue }
            converted[key] = policy
        }
        return converted.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// The converted PeerAuthentication that applies to `pod`, if its effective mode refuses plaintext anywhere.
    public func peerAuthentication(of pod: ClusterPod) -> (key: String, authorization: Istio_Security_Authorization)? {
        guard pod.isMeshCandidate, !peerAuthenticationsByNamespace.isEmpty else { return nil }
        return Self.effectivePeerAuthentication(pod, byNamespace: peerAuthenticationsByNamespace, rootNamespace: options.rootNamespace)
    }

    static func effectivePeerAuthentication(_ pod: ClusterPod, byNamespace: [String: [ClusterPeerAuthentication]], rootNamespace: String)
        -> (key: String, authorization: Istio_Security_Authorization)? {
        let local = byNamespace[pod.namespace] ?? []
        let workload = local.first { $0.selector?.matches(pod.labels) == true }
        let namespace = local.first { $0.selector == nil }
        let mesh = pod.namespace == rootNamespace ? namespace : (byNamespace[rootNamespace] ?? []).first { $0.selector == nil }
        let levels = [workload, namespace, mesh].compactMap { $0 }
        let decider = levels.first { $0.mode != .unset }
        let mode = decider?.mode ?? .permissive
        let portModes = (workload?.portLevelModes ?? [:]).filter { $0.value != .unset }
        var match = Istio_Security_Match()
        var present = Istio_Security_StringMatch()
        present.presence = .init()
        match.notPrincipals = [present]
        if mode == .strict {
            match.notDestinationPorts = portModes.filter { $0.value != .strict }.keys.sorted().map(UInt32.init)
        } else {
            let strictPorts = portModes.filter { $0.value == .strict }.keys.sorted()
            guard !strictPorts.isEmpty else { return nil }
            match.destinationPorts = strictPorts.map(UInt32.init)
        }
        // Named after the workload policy when it shapes the result, else after the policy whose mode decides.
        guard let owner = (workload.flatMap { $0.mode != .unset || !portModes.isEmpty ? $0 : nil }) ?? decider else { return nil }
        var rules = Istio_Security_Rules()
        rules.matches = [match]
        var group = Istio_Security_Group()
        group.rules = [rules]
        var authorization = Istio_Security_Authorization()
        authorization.name = peerAuthenticationPolicyName(owner)
        authorization.namespace = owner.namespace
        authorization.scope = .workloadSelector
        authorization.action = .deny
        authorization.groups = [group]
        return ("\(owner.namespace)/\(authorization.name)", authorization)
    }

    /// The name of the Authorization a PeerAuthentication becomes.
    public static func peerAuthenticationPolicyName(_ policy: ClusterPeerAuthentication) -> String {
        "istio_converted_peer_authentication_\(policy.name)"
    }

    private func gatewayAddress(_ gateway: ClusterGateway) -> Istio_Workload_GatewayAddress {
        var address = Istio_Workload_GatewayAddress()
        var host = Istio_Workload_NamespacedHostname()
        host.namespace = gateway.namespace
        host.hostname = "\(gateway.name).\(gateway.namespace).svc.\(options.domainSuffix)"
        address.hostname = host
        address.hboneMtlsPort = options.hbonePort
        return address
    }
}
