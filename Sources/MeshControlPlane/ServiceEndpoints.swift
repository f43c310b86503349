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
        /// False when the endpoint is not ready (its pod's `Ready` condition, or its EndpointSlice's).
        public var ready: Bool
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
        let podsByNamespace = Self.runningPods(of: state, in: nil)
        for service in state.services {
            if let slices = slicesByService[service.key] {
                var ports: [UInt16: [ServiceEndpoint]] = [:]
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
                result[service.key] = ports
            } else {
                result[service.key] = Self.selected(by: service, among: podsByNamespace[service.namespace] ?? [], state: state, plan: plan)
            }
        }
        byService = result
        byPod = Self.memberships(of: state.services, in: result)
    }

    /// The endpoints of `state` when it differs from the state `previous` was made
    /// from only in the pods of `namespaces` (and their addresses): only the
    /// Services of those namespaces are matched again. With EndpointSlices
    /// (whose addresses may name pods of any namespace) everything is.
    public init(state: ClusterState, plan: AddressPlan, updating previous: ServiceEndpoints, namespaces: Set<String>) {
        guard state.endpointSlices.isEmpty else {
            self.init(state: state, plan: plan)
            return
        }
        let podsByNamespace = Self.runningPods(of: state, in: namespaces)
        var result = previous.byService
        var memberships = previous.byPod
        let affected = state.services.filter { namespaces.contains($0.namespace) }
        for service in affected {
            result[service.key] = Self.selected(by: service, among: podsByNamespace[service.namespace] ?? [], state: state, plan: plan)
        }
        // A pod backs only Services of its own namespace, so only the memberships of those
        // namespaces' pods can change: those the previous endpoints list, and the new ones.
        for service in affected {
            for endpoints in (previous.byService[service.key] ?? [:]).values {
                for endpoint in endpoints { if let pod = endpoint.pod { memberships[pod] = nil } }
            }
        }
        memberships.merge(Self.memberships(of: affected, in: result), uniquingKeysWith: { _, new in new })
        self.init(byService: result, byPod: memberships)
    }

    private init(byService: [String: [UInt16: [ServiceEndpoint]]], byPod: [String: [Membership]]) {
        self.byService = byService
        self.byPod = byPod
    }

    /// Indexes into `state.pods` of the running pods, by namespace (all of them, or
    /// those of `namespaces`), in name order.
    private static func runningPods(of state: ClusterState, in namespaces: Set<String>?) -> [String: [Int]] {
        var podsByNamespace: [String: [Int]] = [:]
        for (index, pod) in state.pods.enumerated() where pod.isMeshCandidate && namespaces?.contains(pod.namespace) != false {
            podsByNamespace[pod.namespace, default: []].append(index)
        }
        for (namespace, indexes) in podsByNamespace { podsByNamespace[namespace] = indexes.sorted { state.pods[$0].name < state.pods[$1].name } }
        return podsByNamespace
    }

    /// The endpoints of a Service without EndpointSlices: the pods its selector matches.
    private static func selected(by service: ClusterService, among pods: [Int], state: ClusterState, plan: AddressPlan) -> [UInt16: [ServiceEndpoint]] {
        guard let selector = service.selector, !selector.isEmpty else { return [:] }
        let matcher = LabelSelector(matchLabels: selector)
        let backing = pods.filter { matcher.matches(state.pods[$0].labels) }
        var ports: [UInt16: [ServiceEndpoint]] = [:]
        for port in service.ports {
            ports[port.port] = backing.compactMap { index -> ServiceEndpoint? in
                let key = state.pods[index].key
                guard let address = plan.podIPs[key]?.first, let target = Self.resolve(port, on: state.pods[index]) else { return nil }
                return ServiceEndpoint(pod: key, address: address, targetPort: target, ready: state.pods[index].isReady)
            }
        }
        return ports
    }

    /// The service ports each pod backs among `services`, in service and port order.
    private static func memberships(of services: [ClusterService], in byService: [String: [UInt16: [ServiceEndpoint]]]) -> [String: [Membership]] {
        var memberships: [String: [Membership]] = [:]
        let keys = services.map(\.key)
        for service in services.indices.sorted(by: { keys[$0] < keys[$1] }).map({ services[$0] }) {
            for port in service.ports {
                for endpoint in byService[service.key]?[port.port] ?? [] {
                    // One membership per service port, even with an address per family.
                    guard let pod = endpoint.pod, memberships[pod]?.last.map({ $0.service == service.key && $0.servicePort == port.port }) != true else { continue }
                    memberships[pod, default: []].append(Membership(service: service.key, servicePort: port.port, targetPort: endpoint.targetPort,
                                                                    ready: endpoint.ready))
                }
            }
        }
        return memberships
    }

    /// The namespace of a `namespace/name` key.
    static func namespace(ofKey key: String) -> Substring { key.prefix { $0 != "/" } }

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
