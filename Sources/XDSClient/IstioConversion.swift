import Foundation
import MeshProto

/// One Istio ambient `Address` resource in WorkloadStore's model: a workload or a service.
public enum MeshAddress: Sendable, Hashable {
    case workload(Workload)
    case service(Service)

    /// The resource name Istio gives it: the workload uid, or the service's `namespace/hostname`.
    public var key: String {
        switch self {
        case .workload(let workload): return workload.uid
        case .service(let service): return service.key
        }
    }

    /// Converts istio.workload.Address, refusing what the model cannot represent faithfully.
    public init(_ address: Istio_Workload_Address) throws(WorkloadStoreError) {
        switch address.type {
        case .workload(let workload): self = .workload(try Workload(workload))
        case .service(let service): self = .service(try Service(service))
        case nil: throw .missingField("address.type (workload or service)")
        }
    }
}

extension Workload {
    /// Converts istio.workload.Workload (addresses as 4- or 16-byte strings).
    public init(_ proto: Istio_Workload_Workload) throws(WorkloadStoreError) {
        guard !proto.uid.isEmpty else { throw .missingField("workload.uid") }
        let tunnel: TunnelProtocol
        switch proto.tunnelProtocol {
        case .none: tunnel = .tcp
        case .hbone: tunnel = .hbone
        case .UNRECOGNIZED(let value): throw .invalidValue(field: "workload.tunnel_protocol", value: "\(value)")
        }
        let healthy: Bool
        switch proto.status {
        case .healthy: healthy = true
        case .unhealthy: healthy = false
        case .UNRECOGNIZED(let value): throw .invalidValue(field: "workload.status", value: "\(value)")
        }
        var services: [String: [UInt16: UInt16]] = [:]
        for (key, list) in proto.services {
            services[key] = try IstioPorts.map(list.ports, field: "workload.services[\(key)]")
        }
        // Pods of one deployment carry the same service map; keep one copy of it.
        if !services.isEmpty { services = IstioInterning.services.intern(services) }
        self.init(
            uid: proto.uid,
            name: proto.name,
            namespace: proto.namespace,
            serviceAccount: proto.serviceAccount.isEmpty ? "default" : proto.serviceAccount,
            trustDomain: proto.trustDomain.isEmpty ? "cluster.local" : IstioInterning.strings.intern(proto.trustDomain),
            workloadIPs: try proto.addresses.map { bytes throws(WorkloadStoreError) in try IPAddressText.format(bytes, field: "workload.addresses") },
            network: proto.network,
            node: proto.node,
            tunnelProtocol: tunnel,
            healthy: healthy,
            services: services,
            authorizationPolicies: proto.authorizationPolicies
        )
    }
}

extension Service {
    /// Converts istio.workload.Service.
    public init(_ proto: Istio_Workload_Service) throws(WorkloadStoreError) {
        guard !proto.hostname.isEmpty else { throw .missingField("service.hostname") }
        guard !proto.namespace.isEmpty else { throw .missingField("service.namespace") }
        self.init(
            name: proto.name,
            namespace: proto.namespace,
            hostname: proto.hostname,
            vips: try proto.addresses.map { address throws(WorkloadStoreError) in
                NetworkAddress(network: address.network, address: try IPAddressText.format(address.address, field: "service.addresses"))
            },
            ports: try IstioPorts.map(proto.ports, field: "service.ports")
        )
    }
}

extension Authorization {
    /// Converts istio.security.Authorization (identities, namespaces, ports and
    /// IP ranges); anything malformed is refused with the field it is in.
    public init(_ proto: Istio_Security_Authorization) throws(WorkloadStoreError) {
        guard !proto.name.isEmpty else { throw .missingField("authorization.name") }
        let scope: Scope
        switch proto.scope {
        case .global: scope = .global
        case .namespace: scope = .namespace
        case .workloadSelector: scope = .workloadSelector
        case .UNRECOGNIZED(let value): throw .invalidValue(field: "authorization.scope", value: "\(value)")
        }
        let action: Action
        switch proto.action {
        case .allow: action = .allow
        case .deny: action = .deny
        case .UNRECOGNIZED(let value): throw .invalidValue(field: "authorization.action", value: "\(value)")
        }
        let rules = try proto.groups.map { group throws(WorkloadStoreError) in
            try group.rules.map { clause throws(WorkloadStoreError) in
                try clause.matches.map { match throws(WorkloadStoreError) in try AuthorizationMatch(match) }
            }
        }
        self.init(name: proto.name, namespace: proto.namespace, scope: scope, action: action, rules: rules)
        self.dryRun = proto.dryRun
    }
}

extension AuthorizationMatch {
    init(_ proto: Istio_Security_Match) throws(WorkloadStoreError) {
        func ranges(_ list: [Istio_Security_Address], field: String) throws(WorkloadStoreError) -> [AddressRange] {
            var out: [AddressRange] = []
            for address in list {
                do { out.append(try AddressRange(bytes: address.address, prefixLength: Int(address.length))) } catch {
                    throw .invalidValue(field: "authorization match \(field)", value: "\(error)")
                }
            }
            return out
        }
        func principals(_ accounts: [Istio_Security_ServiceAccountMatch]) -> [String] {
            accounts.map { "*/ns/\($0.namespace)/sa/\($0.serviceAccount)" }
        }
        self.init(
            namespaces: try proto.namespaces.map(Self.pattern),
            notNamespaces: try proto.notNamespaces.map(Self.pattern),
            principals: try proto.principals.map(Self.pattern) + principals(proto.serviceAccounts),
            notPrincipals: try proto.notPrincipals.map(Self.pattern) + principals(proto.notServiceAccounts),
            destinationPorts: try proto.destinationPorts.map { port throws(WorkloadStoreError) in try IstioPorts.port(port, field: "destination_ports") },
            notDestinationPorts: try proto.notDestinationPorts.map { port throws(WorkloadStoreError) in try IstioPorts.port(port, field: "not_destination_ports") },
            sourceIPs: try ranges(proto.sourceIps, field: "source_ips"),
            notSourceIPs: try ranges(proto.notSourceIps, field: "not_source_ips"),
            destinationIPs: try ranges(proto.destinationIps, field: "destination_ips"),
            notDestinationIPs: try ranges(proto.notDestinationIps, field: "not_destination_ips")
        )
    }

    /// A StringMatch as this model's pattern: exact, `prefix*`, `*suffix`, or `*` for presence.
    static func pattern(_ match: Istio_Security_StringMatch) throws(WorkloadStoreError) -> String {
        switch match.matchType {
        case .exact(let value): return value
        case .prefix(let value): return value + "*"
        case .suffix(let value): return "*" + value
        case .presence: return "*"
        case nil: throw .missingField("authorization string match (exact, prefix, suffix or presence)")
        }
    }
}

/// Values that repeat across many workloads, shared instead of copied.
enum IstioInterning {
    static let services = Interner<[String: [UInt16: UInt16]]>()
    static let strings = Interner<String>()
}

enum IstioPorts {
    static func port(_ value: UInt32, field: String) throws(WorkloadStoreError) -> UInt16 {
        guard value > 0, let port = UInt16(exactly: value) else { throw .invalidValue(field: field, value: "\(value)") }
        return port
    }

    static func map(_ ports: [Istio_Workload_Port], field: String) throws(WorkloadStoreError) -> [UInt16: UInt16] {
        var mapped: [UInt16: UInt16] = [:]
        for entry in ports {
            let target = entry.targetPort == 0 ? entry.servicePort : entry.targetPort
            mapped[try port(entry.servicePort, field: field)] = try port(target, field: field)
        }
        return mapped
    }
}

extension IPAddressText {
    /// Formats a 4- or 16-byte address (RFC 5952 for IPv6).
    static func format(_ bytes: Data, field: String) throws(WorkloadStoreError) -> String {
        let octets = [UInt8](bytes)
        switch octets.count {
        case 4:
            return octets.map(String.init).joined(separator: ".")
        case 16:
            let groups = stride(from: 0, to: 16, by: 2).map { UInt16(octets[$0]) << 8 | UInt16(octets[$0 + 1]) }
            var best = (start: -1, length: 0)
            var index = 0
            while index < 8 {
                guard groups[index] == 0 else { index += 1; continue }
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > best.length { best = (index, end - index) }
                index = end
            }
            let hex = groups.map { String($0, radix: 16) }
            guard best.length >= 2 else { return hex.joined(separator: ":") }
            let head = hex[..<best.start].joined(separator: ":")
            let tail = hex[(best.start + best.length)...].joined(separator: ":")
            return head + "::" + tail
        default:
            throw .invalidValue(field: field, value: "\(octets.count)-byte address (expected 4 or 16 bytes)")
        }
    }
}

extension XDSResourceType where Value == MeshAddress {
    /// Istio ambient `Address` decoded straight into WorkloadStore's model;
    /// a resource the model cannot represent is NACKed with the reason.
    public static var meshAddress: Self {
        XDSResourceType(
            typeURL: "type.googleapis.com/" + Istio_Workload_Address.protoMessageName,
            decode: { any in try MeshAddress(Istio_Workload_Address(serializedBytes: any.value)) },
            name: \.key
        )
    }
}

extension XDSResourceType where Value == Authorization {
    /// Istio ambient L4 `Authorization` decoded into WorkloadStore's model.
    public static var meshAuthorization: Self {
        XDSResourceType(
            typeURL: "type.googleapis.com/" + Istio_Security_Authorization.protoMessageName,
            decode: { any in try Authorization(Istio_Security_Authorization(serializedBytes: any.value)) },
            name: \.key
        )
    }
}
