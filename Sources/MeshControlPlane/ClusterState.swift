import PolicyEngine

/// Every object the control plane reads from manifests, validated as a whole.
///
/// A `ClusterState` is what one load of a manifest directory yields; it is
/// immutable once built, and the control plane replaces it atomically.
public struct ClusterState: Sendable {
    /// Namespaces, pods, services and the policies (AuthorizationPolicy,
    /// NetworkPolicy, CiliumNetworkPolicy) as PolicyEngine reads them.
    public var policies: PolicyBundle
    public var nodes: [ClusterNode]
    public var pods: [ClusterPod]
    public var services: [ClusterService]
    public var serviceAccounts: [ClusterServiceAccount]
    public var endpointSlices: [ClusterEndpointSlice]
    public var peerAuthentications: [ClusterPeerAuthentication]
    public var gateways: [ClusterGateway]
    public var httpRoutes: [ClusterHTTPRoute]
    /// Documents of kinds the control plane does not read, as `file#index kind name`.
    public var skipped: [String]

    /// Namespaces that exist in every cluster without a manifest.
    public static let builtinNamespaces: Set<String> = ["default", "kube-system", "kube-public", "kube-node-lease"]

    public init(policies: PolicyBundle = PolicyBundle(), nodes: [ClusterNode] = [], pods: [ClusterPod] = [], services: [ClusterService] = [],
                serviceAccounts: [ClusterServiceAccount] = [], endpointSlices: [ClusterEndpointSlice] = [],
                peerAuthentications: [ClusterPeerAuthentication] = [], gateways: [ClusterGateway] = [], httpRoutes: [ClusterHTTPRoute] = [],
                skipped: [String] = []) {
        self.policies = policies
        self.nodes = nodes
        self.pods = pods
        self.services = services
        self.serviceAccounts = serviceAccounts
        self.endpointSlices = endpointSlices
        self.peerAuthentications = peerAuthentications
        self.gateways = gateways
        self.httpRoutes = httpRoutes
        self.skipped = skipped
    }

    /// Appends the objects of `other` (another file's).
    mutating func append(_ other: ClusterState) {
        policies.merge(other.policies)
        nodes += other.nodes
        pods += other.pods
        services += other.services
        serviceAccounts += other.serviceAccounts
        endpointSlices += other.endpointSlices
        peerAuthentications += other.peerAuthentications
        gateways += other.gateways
        httpRoutes += other.httpRoutes
        skipped += other.skipped
    }

    /// Where the object with key `Kind/namespace/name` was read (nil for the policy kinds, which record no origin).
    func origin(ofKey key: String) -> ObjectOrigin? {
        func find<Object: ClusterObject>(_ list: [Object]) -> ObjectOrigin? { list.first { $0.objectKey == key }?.origin }
        return find(pods) ?? find(services) ?? find(nodes) ?? find(serviceAccounts) ?? find(endpointSlices)
            ?? find(peerAuthentications) ?? find(gateways) ?? find(httpRoutes)
    }

    /// The labels of namespace `name` (only `kubernetes.io/metadata.name` when it has no manifest).
    public func namespaceLabels(_ name: String) -> Labels {
        policies.namespaces.first { $0.name == name }?.labels ?? Namespace(name: name).labels
    }

    /// The node named `name`.
    public func node(_ name: String) -> ClusterNode? { nodes.first { $0.name == name } }

    /// The pod `namespace/name`.
    public func pod(_ key: String) -> ClusterPod? { pods.first { $0.key == key } }

    /// Whether `other` holds the same objects as this state, pods aside.
    public func differsOnlyInPods(from other: ClusterState) -> Bool {
        nodes == other.nodes && services == other.services && serviceAccounts == other.serviceAccounts
            && endpointSlices == other.endpointSlices && peerAuthentications == other.peerAuthentications
            && gateways == other.gateways && httpRoutes == other.httpRoutes && skipped == other.skipped
            && policies.namespaces == other.policies.namespaces && policies.services == other.policies.services
            && policies.authorizationPolicies == other.policies.authorizationPolicies
            && policies.networkPolicies == other.policies.networkPolicies && policies.ciliumPolicies == other.policies.ciliumPolicies
            && policies.skipped == other.policies.skipped
    }

    /// The service `namespace/name`.
    public func service(namespace: String, name: String) -> ClusterService? {
        services.first { $0.namespace == namespace && $0.name == name }
    }

    /// Refuses what Kubernetes would refuse across objects: a pod in a
    /// namespace or with a service account that does not exist, a pod on an
    /// undefined node, and two pods (or two Services) claiming one address.
    public func validate() throws(PolicyLoadError) {
        _ = try validated()
    }

    /// Validates as ``validate()`` does and returns the pod checks' state, for
    /// checking pods that replace some of these later (``PodChecker``).
    func validated() throws(PolicyLoadError) -> PodChecker {
        var checker = PodChecker(self)
        for pod in pods { try checker.check(pod) }
        var clusterIPs: [IPAddress: String] = [:]
        for service in services {
            guard checker.namespaces.contains(service.namespace) else {
                throw service.origin.error(.missingReference, "namespace '\(service.namespace)' does not exist (add a Namespace manifest)", field: "metadata.namespace")
            }
            guard let ip = service.clusterIP else { continue }
            if let other = clusterIPs[ip] {
                throw service.origin.error(.duplicate, "cluster IP \(ip) is also claimed by service \(other)", field: "spec.clusterIP")
            }
            clusterIPs[ip] = service.key
        }
        var cidrs: [(CIDR, String)] = []
        for node in nodes {
            guard let cidr = node.podCIDR else { continue }
            if let other = cidrs.first(where: { $0.0.contains(cidr) || cidr.contains($0.0) }) {
                throw node.origin.error(.duplicate, "pod CIDR \(cidr) overlaps node \(other.1)'s \(other.0)", field: "spec.podCIDR")
            }
            cidrs.append((cidr, node.name))
        }
        var nodeIPs: [IPAddress: String] = [:]
        for node in nodes {
            guard let ip = node.internalIP else { continue }
            if let other = nodeIPs[ip] {
                throw node.origin.error(.duplicate, "node IP \(ip) is also claimed by node \(other)", field: "status.addresses")
            }
            nodeIPs[ip] = node.name
        }
        return checker
    }
}

/// What Kubernetes refuses of a pod given the other objects: a namespace,
/// service account or node that does not exist, an address another pod claims.
struct PodChecker: Sendable {
    let namespaces: Set<String>
    let accounts: Set<String>
    let nodeNames: Set<String>
    /// Pod addresses claimed so far, by the pod (`namespace/name`) claiming each.
    private(set) var podIPs: [IPAddress: String] = [:]

    init(_ state: ClusterState) {
        namespaces = Set(state.policies.namespaces.map(\.name)).union(ClusterState.builtinNamespaces)
        accounts = Set(state.serviceAccounts.map { "\($0.namespace)/\($0.name)" })
        nodeNames = Set(state.nodes.map(\.name))
    }

    /// Checks `pod` and records its addresses.
    mutating func check(_ pod: ClusterPod) throws(PolicyLoadError) {
        guard namespaces.contains(pod.namespace) else {
            throw pod.origin.error(.missingReference, "namespace '\(pod.namespace)' does not exist (add a Namespace manifest)", field: "metadata.namespace")
        }
        guard pod.serviceAccount == "default" || accounts.contains("\(pod.namespace)/\(pod.serviceAccount)") else {
            throw pod.origin.error(.missingReference, "service account '\(pod.namespace)/\(pod.serviceAccount)' does not exist", field: "spec.serviceAccountName")
        }
        if let node = pod.nodeName, !nodeNames.contains(node) {
            throw pod.origin.error(.missingReference, "node '\(node)' is not defined by any Node manifest", field: "spec.nodeName")
        }
        // Pods on the node's network share its address, and ended pods keep theirs: neither claims it.
        for ip in pod.podIPs where pod.isMeshCandidate {
            if let other = podIPs[ip] {
                throw pod.origin.error(.duplicate, "pod IP \(ip) is also claimed by pod \(other)", field: "status.podIP")
            }
            podIPs[ip] = pod.key
        }
    }

    /// Forgets the addresses `pod` claimed (it is being replaced or removed).
    mutating func release(_ pod: ClusterPod) {
        for ip in pod.podIPs where podIPs[ip] == pod.key { podIPs[ip] = nil }
    }
}
