import PolicyEngine

/// One backend of a Service port: a pod address and the port to reach it on.
public struct ServiceEndpoint: Hashable, Sendable {
    /// `namespace/name` of the backing pod, when known.
    public var pod: String?
    public var address: IPAddress
    public var targetPort: UInt16
    public var ready: Bool

    public init(pod: String?, address: IPAddress, targetPort: UInt16, ready: Bool = true) {
        self.pod = pod
        self.address = address
        self.targetPort = targetPort
        self.ready = ready
    }
}

/// The endpoints of every Service: from its EndpointSlices when it has any,
/// otherwise derived from its selector over the running pods of its namespace
/// (what the EndpointSlice controller would write).
public struct ServiceEndpoints: Sendable {
    /// One service port a pod backs.
    public struct Membership: Hashable, Sendable {
        /// Service `namespace/name`.
        public var service: String
        public var servicePort: UInt16
        public var targetPort: UInt16
    }

    /// Service `namespace/name` → service port → endpoints, in pod order.
    public let byService: [String: [UInt16: [ServiceEndpoint]]]
    /// Pod `namespace/name` → the service ports it backs, in service and port order.
    public let byPod: [String: [Membership]]

    public init(state: ClusterState, plan: AddressPlan) {
        var result: [String: [UInt16: [ServiceEndpoint]]] = [:]
        var podByIP: [IPAddress: String] = [:]
        for (pod, ips) in plan.podIPs { for ip in ips { podByIP[ip] = pod } }
        let slicesByService = Dictionary(grouping: state.endpointSlices) { "\($0.namespace)/\($0.serviceName)" }
        // Indexes into state.pods, by namespace, in name order (no copies of the pods).
        var podsByNamespace: [String: [Int]] = [:]
        for (index, pod) in state.pods.enumerated() where pod.isMeshCandidate { podsByNamespace[pod.namespace, default: []].append(index) }
        for (namespace, indexes) in podsByNamespace { podsByNamespace[namespace] = indexes.sorted { state.pods[$0].name < state.pods[$1].name } }
        for service in state.services {
            var ports: [UInt16: [ServiceEndpoint]] = [:]
            if let slices = slicesByService[service.key] {
                for port in service.ports {
                    var list: [ServiceEndpoint] = []
                    for slice in slices.sorted(by: { $0.name < $1.name }) {
                        // A slice port matches a service port by name (both unnamed when the Service has one port).
                        guard let slicePort = slice.ports.first(where: { $0.name == port.name && $0.protocol == port.protocol }) else { continue }
                        for endpoint in slice.endpoints {
                            for address in endpoint.addresses {
                                list.append(ServiceEndpoint(pod: endpoint.pod ?? podByIP[address], address: address, targetPort: slicePort.port, ready: endpoint.ready))
                            }
                        }
                    }
                    ports[port.port] = list
                }
            } else if let selector = service.selector, !selector.isEmpty {
                let matcher = LabelSelector(matchLabels: selector)
                let backing = (podsByNamespace[service.namespace] ?? []).filter { matcher.matches(state.pods[$0].labels) }
                for port in service.ports {
                    ports[port.port] = backing.compactMap { index -> ServiceEndpoint? in
                        let key = state.pods[index].key
                        guard let address = plan.podIPs[key]?.first, let target = Self.resolve(port, on: state.pods[index]) else { return nil }
                        return ServiceEndpoint(pod: key, address: address, targetPort: target)
                    }
                }
            }
            result[service.key] = ports
        }
        byService = result
        var memberships: [String: [Membership]] = [:]
        for service in state.services.sorted(by: { $0.key < $1.key }) {
            for port in service.ports {
                for endpoint in result[service.key]?[port.port] ?? [] {
                    // One membership per service port, even with an address per family.
                    guard let pod = endpoint.pod, memberships[pod]?.last.map({ $0.service == service.key && $0.servicePort == port.port }) != true else { continue }
                    memberships[pod, default: []].append(Membership(service: service.key, servicePort: port.port, targetPort: endpoint.targetPort))
                }
            }
        }
        byPod = memberships
    }

    /// The target port of `port` on `pod`: the number, or the pod's container port of that name.
    public static func resolve(_ port: ClusterService.Port, on pod: ClusterPod) -> UInt16? {
        switch port.targetPort {
        case .number(let n): return n
        case .named(let name): return pod.containerPort(named: name, protocol: port.protocol)
        }
    }

    /// The endpoints of one service port.
    public func endpoints(service key: String, port: UInt16) -> [ServiceEndpoint] {
        byService[key]?[port] ?? []
    }
}
