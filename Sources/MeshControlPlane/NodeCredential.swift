import MeshIdentity
import PolicyEngine

/// The identity of a node's proxy (ztunnel) towards the control plane:
/// `spiffe://<trust-domain>/node/<node-name>`.
///
/// A node credential is an X509-SVID with this ID, issued by the mesh CA
/// (`mesh-controlplane node-credential NODE`). With it a ztunnel may fetch
/// xDS and request certificates for the service accounts of pods scheduled
/// on its own node, and for nothing else.
public enum NodeCredential {
    /// The SPIFFE ID of node `name`.
    public static func identity(node name: String, trustDomain: String) throws -> SPIFFEID {
        try SPIFFEID("spiffe://\(trustDomain)/node/\(name)")
    }

    /// The node a node credential names, or nil for any other ID.
    public static func nodeName(of id: SPIFFEID) -> String? {
        let parts = id.path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, parts[1] == "node", !parts[2].isEmpty else { return nil }
        return String(parts[2])
    }
}

/// Istio's impersonation check for the CA: a node may obtain the identity
/// `spiffe://TD/ns/NS/sa/SA` only while a pod with that namespace and service
/// account is scheduled on it.
public struct NodeImpersonationRule: Sendable {
    public let trustDomain: String

    public init(trustDomain: String) {
        self.trustDomain = trustDomain
    }

    /// Nil when `caller` may obtain `requested` given `state`; otherwise why not.
    ///
    /// A caller asking for its own identity (a renewal) may have it while it
    /// still exists: a node credential while its Node does, a workload identity
    /// while a pod runs with that service account. Another identity may be
    /// obtained only by a node credential, for a pod scheduled on that node.
    public func refusal(caller: SPIFFEID, requested: SPIFFEID, state: ClusterState?) -> String? {
        guard caller.trustDomain.name == trustDomain else { return "\(caller) is outside trust domain \(trustDomain)" }
        guard requested.trustDomain.name == trustDomain else { return "\(requested) is outside trust domain \(trustDomain)" }
        guard let state else { return "no cluster state is loaded yet" }
        if caller == requested {
            if let node = NodeCredential.nodeName(of: caller) {
                return state.node(node) == nil ? "node \(node) is not defined any more, so its credential is not renewed" : nil
            }
            guard let (namespace, account) = Self.istioIdentity(requested) else {
                return "\(requested) is neither a node credential nor of the form spiffe://\(trustDomain)/ns/NAMESPACE/sa/SERVICE-ACCOUNT"
            }
            let running = state.pods.contains { $0.namespace == namespace && $0.serviceAccount == account && $0.isRunning }
            return running ? nil : "no pod runs with service account \(namespace)/\(account) any more, so \(requested) is not renewed"
        }
        guard let node = NodeCredential.nodeName(of: caller) else {
            return "\(caller) is not a node credential and may not request certificates for other identities"
        }
        guard let (namespace, account) = Self.istioIdentity(requested) else {
            return "\(requested) is not of the form spiffe://\(trustDomain)/ns/NAMESPACE/sa/SERVICE-ACCOUNT"
        }
        let local = state.pods.contains { $0.nodeName == node && $0.namespace == namespace && $0.serviceAccount == account && $0.isRunning }
        return local ? nil : "node \(node) (\(caller)) runs no pod with service account \(namespace)/\(account), so it may not have \(requested)"
    }

    static func istioIdentity(_ id: SPIFFEID) -> (String, String)? {
        let parts = id.path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "ns", parts[3] == "sa", !parts[2].isEmpty, !parts[4].isEmpty else { return nil }
        return (String(parts[2]), String(parts[4]))
    }
}
