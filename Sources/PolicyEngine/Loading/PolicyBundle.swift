/// Everything loaded from Kubernetes manifests: policies and the inventory
/// objects (namespaces, pods, services) they are evaluated against.
public struct PolicyBundle: Sendable {
    public var namespaces: [Namespace] = []
    public var workloads: [Workload] = []
    public var services: [Service] = []
    public var authorizationPolicies: [AuthorizationPolicy] = []
    public var networkPolicies: [NetworkPolicy] = []
    public var ciliumPolicies: [CiliumNetworkPolicy] = []
    /// Documents of kinds the engine does not use (e.g. Deployments), as
    /// `file#index kind name`; they are reported here and in the log, not silently dropped.
    public var skipped: [String] = []

    public init() {}

    /// The inventory formed by the loaded namespaces, pods and services.
    public var inventory: Inventory {
        Inventory(namespaces: namespaces, workloads: workloads, services: services)
    }

    /// Appends another bundle (used after a whole file loaded successfully).
    public mutating func merge(_ other: PolicyBundle) {
        namespaces += other.namespaces
        workloads += other.workloads
        services += other.services
        authorizationPolicies += other.authorizationPolicies
        networkPolicies += other.networkPolicies
        ciliumPolicies += other.ciliumPolicies
        skipped += other.skipped
    }

    /// `kind/namespace/name` keys of every object, for duplicate detection.
    var objectKeys: Set<String> {
        var keys = Set<String>()
        for n in namespaces { keys.insert("Namespace//\(n.name)") }
        for w in workloads { keys.insert("Pod/\(w.namespace)/\(w.name)") }
        for s in services { keys.insert("Service/\(s.namespace)/\(s.name)") }
        for p in authorizationPolicies { keys.insert("AuthorizationPolicy/\(p.namespace)/\(p.name)") }
        for p in networkPolicies { keys.insert("NetworkPolicy/\(p.namespace)/\(p.name)") }
        for p in ciliumPolicies { keys.insert("\(p.reference.kind.rawValue)/\(p.namespace)/\(p.name)") }
        return keys
    }
}
