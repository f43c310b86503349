import MeshIdentity

/// How traffic reaches a workload (Istio workload.proto `TunnelProtocol`).
public enum TunnelProtocol: String, Sendable, Hashable, Codable {
    /// Plain TCP, no mesh tunnel.
    case tcp = "TCP"
    /// HTTP/2 CONNECT over mTLS to port 15008.
    case hbone = "HBONE"
}

/// An address qualified by its network (`network/ip`; the empty network is the default one).
public struct NetworkAddress: Sendable, Hashable, CustomStringConvertible {
    /// The network name ("" is the default network).
    public var network: String
    /// The IP address, textual.
    public var address: String

    public init(network: String = "", address: String) {
        self.network = network
        self.address = address
    }

    /// Parses `network/ip`, `/ip` or `ip`.
    public init(parsing value: String) throws(WorkloadStoreError) {
        let parts = value.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let network = parts.count == 2 ? String(parts[0]) : ""
        let address = String(parts.count == 2 ? parts[1] : parts[0])
        guard IPAddressText.isValid(address) else { throw .invalidAddress(value) }
        self.init(network: network, address: address)
    }

    public var description: String { "\(network)/\(address)" }
}

/// A workload (Istio workload.proto `Workload`, the fields ztunnel's local config uses).
public struct Workload: Sendable, Hashable {
    /// Unique ID, e.g. `cluster1//v1/Pod/default/echo-5d8f`.
    public var uid: String
    public var name: String
    public var namespace: String { didSet { parsedIdentity = parseIdentity() } }
    public var serviceAccount: String { didSet { parsedIdentity = parseIdentity() } }
    public var trustDomain: String { didSet { parsedIdentity = parseIdentity() } }
    /// The workload's IPs (on `network`).
    public var workloadIPs: [String]
    public var network: String
    /// The node the workload runs on.
    public var node: String
    /// Whether the workload is reached through HBONE or plain TCP.
    public var tunnelProtocol: TunnelProtocol
    /// Istio's `status`: false (UNHEALTHY) for a pod that is not ready. It stays reachable
    /// by its address, but is not picked as an endpoint of its Services.
    public var healthy: Bool
    /// Services the workload backs: `namespace/hostname` → service port → target port.
    public var services: [String: [UInt16: UInt16]]
    /// Workload-selector policies that apply to this workload, as `namespace/name`.
    public var authorizationPolicies: [String]
    /// ``identity()``, made when the parts change rather than at each connection's metrics and log line (nil: not a valid SPIFFE ID).
    private var parsedIdentity: SPIFFEID?

    public init(
        uid: String, name: String, namespace: String, serviceAccount: String = "default", trustDomain: String = "cluster.local",
        workloadIPs: [String], network: String = "", node: String = "", tunnelProtocol: TunnelProtocol = .hbone, healthy: Bool = true,
        services: [String: [UInt16: UInt16]] = [:], authorizationPolicies: [String] = []
    ) {
        self.uid = uid
        self.name = name
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.trustDomain = trustDomain
        self.workloadIPs = workloadIPs
        self.network = network
        self.node = node
        self.tunnelProtocol = tunnelProtocol
        self.healthy = healthy
        self.services = services
        self.authorizationPolicies = authorizationPolicies
        self.parsedIdentity = parseIdentity()
    }

    /// The workload's SPIFFE ID, `spiffe://<td>/ns/<ns>/sa/<sa>`; throws why the parts do not make one.
    public func identity() throws -> SPIFFEID {
        if let parsedIdentity { return parsedIdentity }
        return try SPIFFEID(identityText)
    }

    private var identityText: String { "spiffe://\(trustDomain)/ns/\(namespace)/sa/\(serviceAccount)" }

    private func parseIdentity() -> SPIFFEID? { try? SPIFFEID(identityText) }
}

/// A service (Istio workload.proto `Service`).
public struct Service: Sendable, Hashable {
    public var name: String
    public var namespace: String
    /// The DNS name, e.g. `echo.default.svc.cluster.local`.
    public var hostname: String
    /// Virtual IPs.
    public var vips: [NetworkAddress]
    /// Service port → target port.
    public var ports: [UInt16: UInt16]

    public init(name: String, namespace: String, hostname: String, vips: [NetworkAddress] = [], ports: [UInt16: UInt16] = [:]) {
        self.name = name
        self.namespace = namespace
        self.hostname = hostname
        self.vips = vips
        self.ports = ports
    }

    /// `namespace/hostname`, the key workloads use in ``Workload/services``.
    public var key: String { "\(namespace)/\(hostname)" }
}

enum IPAddressText {
    static func isValid(_ text: String) -> Bool {
        if text.contains(":") {
            return !text.isEmpty && text.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } && text.split(separator: ":", omittingEmptySubsequences: false).count <= 8
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isNumber) && (Int(part) ?? 256) <= 255
        }
    }
}
