import Foundation
import MeshProto

/// The other direction of ``MeshAddress/init(_:)``: WorkloadStore's model as the
/// Istio ambient resources a control plane serves (`istio.workload.Address`
/// named by workload uid or `namespace/hostname`, `istio.security.Authorization`
/// named `namespace/name`). A local config file served this way over ADS gives
/// the same store as loading it directly.
extension WorkloadSnapshot {
    /// Every workload and service as a named Istio `Address`.
    public func istioAddresses() throws(WorkloadStoreError) -> [(name: String, address: Istio_Workload_Address)] {
        var result: [(name: String, address: Istio_Workload_Address)] = []
        for workload in workloads {
            var address = Istio_Workload_Address()
            address.workload = try workload.istio()
            result.append((workload.uid, address))
        }
        for service in services {
            var address = Istio_Workload_Address()
            address.service = try service.istio()
            result.append((service.key, address))
        }
        return result
    }

    /// Every policy as a named Istio `Authorization`.
    public func istioAuthorizations() -> [(name: String, authorization: Istio_Security_Authorization)] {
        policies.map { ($0.key, $0.istio()) }
    }
}

extension Workload {
    /// This workload as istio.workload.Workload.
    public func istio() throws(WorkloadStoreError) -> Istio_Workload_Workload {
        var proto = Istio_Workload_Workload()
        proto.uid = uid
        proto.name = name
        proto.namespace = namespace
        proto.serviceAccount = serviceAccount
        proto.trustDomain = trustDomain
        proto.addresses = try workloadIPs.map { ip throws(WorkloadStoreError) in try IPAddressText.bytes(ip) }
        proto.network = network
        proto.node = node
        proto.tunnelProtocol = tunnelProtocol == .hbone ? .hbone : .none
        proto.status = healthy ? .healthy : .unhealthy
        for (key, ports) in services {
            var list = Istio_Workload_PortList()
            list.ports = IstioPorts.encode(ports)
            proto.services[key] = list
        }
        proto.authorizationPolicies = authorizationPolicies
        return proto
    }
}

extension Service {
    /// This service as istio.workload.Service.
    public func istio() throws(WorkloadStoreError) -> Istio_Workload_Service {
        var proto = Istio_Workload_Service()
        proto.name = name
        proto.namespace = namespace
        proto.hostname = hostname
        proto.addresses = try vips.map { vip throws(WorkloadStoreError) in
            var address = Istio_Workload_NetworkAddress()
            address.network = vip.network
            address.address = try IPAddressText.bytes(vip.address)
            return address
        }
        proto.ports = IstioPorts.encode(ports)
        return proto
    }
}

extension Authorization {
    /// This policy as istio.security.Authorization (patterns become exact, prefix, suffix or presence matches).
    public func istio() -> Istio_Security_Authorization {
        var proto = Istio_Security_Authorization()
        proto.name = name
        proto.namespace = namespace
        switch scope {
        case .global: proto.scope = .global
        case .namespace: proto.scope = .namespace
        case .workloadSelector: proto.scope = .workloadSelector
        }
        proto.action = action == .allow ? .allow : .deny
        proto.dryRun = dryRun
        proto.groups = rules.map { rule in
            var group = Istio_Security_Group()
            group.rules = rule.map { clause in
                var rules = Istio_Security_Rules()
                rules.matches = clause.map { $0.istio() }
                return rules
            }
            return group
        }
        return proto
    }
}

extension AuthorizationMatch {
    func istio() -> Istio_Security_Match {
        var proto = Istio_Security_Match()
        proto.namespaces = namespaces.map(Self.stringMatch)
        proto.notNamespaces = notNamespaces.map(Self.stringMatch)
        proto.principals = principals.map(Self.stringMatch)
        proto.notPrincipals = notPrincipals.map(Self.stringMatch)
        proto.destinationPorts = destinationPorts.map(UInt32.init)
        proto.notDestinationPorts = notDestinationPorts.map(UInt32.init)
        func addresses(_ ranges: [AddressRange]) -> [Istio_Security_Address] {
            ranges.map { range in
                var address = Istio_Security_Address()
                address.address = range.bytes
                address.length = UInt32(range.prefixLength)
                return address
            }
        }
        proto.sourceIps = addresses(sourceIPs)
        proto.notSourceIps = addresses(notSourceIPs)
        proto.destinationIps = addresses(destinationIPs)
        proto.notDestinationIps = addresses(notDestinationIPs)
        return proto
    }

    /// The inverse of ``pattern(_:)``: `*` presence, `p*` prefix, `*s` suffix, else exact.
    static func stringMatch(_ pattern: String) -> Istio_Security_StringMatch {
        var match = Istio_Security_StringMatch()
        if pattern == "*" {
            match.presence = .init()
        } else if pattern.hasSuffix("*") {
            match.prefix = String(pattern.dropLast())
        } else if pattern.hasPrefix("*") {
            match.suffix = String(pattern.dropFirst())
        } else {
            match.exact = pattern
        }
        return match
    }
}

extension IstioPorts {
    static func encode(_ ports: [UInt16: UInt16]) -> [Istio_Workload_Port] {
        ports.sorted { $0.key < $1.key }.map { service, target in
            var port = Istio_Workload_Port()
            port.servicePort = UInt32(service)
            port.targetPort = UInt32(target)
            return port
        }
    }
}

extension IPAddressText {
    /// The 4- or 16-byte form of a textual IPv4 or IPv6 address.
    static func bytes(_ text: String) throws(WorkloadStoreError) -> Data {
        if !text.contains(":") {
            guard isValid(text) else { throw .invalidAddress(text) }
            return Data(text.split(separator: ".").map { UInt8($0)! })
        }
        // IPv6: expand "::" and parse the groups (an embedded IPv4 tail is not supported).
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { throw .invalidAddress(text) }
        func groups(_ part: String) throws(WorkloadStoreError) -> [UInt16] {
            guard !part.isEmpty else { return [] }
            return try part.split(separator: ":", omittingEmptySubsequences: false).map { group throws(WorkloadStoreError) in
                guard group.count <= 4, let value = UInt16(group, radix: 16) else { throw .invalidAddress(text) }
                return value
            }
        }
        let head = try groups(halves[0])
        let tail = halves.count == 2 ? try groups(halves[1]) : []
        let missing = 8 - head.count - tail.count
        guard halves.count == 2 ? missing >= 1 : missing == 0 else { throw .invalidAddress(text) }
        let all = head + Array(repeating: 0, count: halves.count == 2 ? missing : 0) + tail
        return Data(all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] })
    }
}
