import MeshProto
import SwiftProtobuf
import PolicyEngine
import XDSServer

/// Everything a control plane serves for one ``ClusterState``: the address
/// plan and every xDS resource (Istio Address and Authorization, Envoy LDS,
/// RDS, CDS and EDS), built by ``IstioResources`` and ``EnvoyResources``.
///
/// Resource versions are digests of their content, so the same manifests give
/// the same versions in any process: a restarted control plane serves
/// reconnecting clients nothing new.
///
/// Built from a `previous` set, it does only the work the difference needs:
///
/// - when the states differ only in pods (the common change: pods come, go,
///   are relabelled), only the changed pods' Workloads and the endpoints of
///   Services in their namespaces are converted again, and the snapshot is the
///   previous one updated by those resources (``changes`` names them);
/// - otherwise everything is converted, and only the resources whose message
///   changed are encoded again (the rest keep their encoding and version).
///
/// Either way the result equals a set built from scratch.
public struct MeshResourceSet: Sendable {
    public let state: ClusterState
    public let plan: AddressPlan
    public let options: MeshOptions
    public let snapshot: XDSSnapshot
    /// What turns the previous set's snapshot into this one (in the shape of
    /// ``XDSSnapshot/changes(to:)``), when it was built from the pods that
    /// changed (nil: built by converting everything).
    public let changes: (upserts: [XDSResource], removals: [XDSResourceKey])?
    /// How many resources this build encoded (the others were reused from the previous set).
    public let encodedCount: Int
    /// How many pods were converted (all of them, or those that changed).
    public let convertedPods: Int
    /// The message behind each resource, to compare with the next conversion's.
    fileprivate let messages: MessageTable
    fileprivate let endpoints: ServiceEndpoints
    /// Names of the Authorizations converted from PeerAuthentications.
    fileprivate let peerAuthenticationNames: Set<String>

    /// Beyond this share of changed pods, converting everything costs less than finding what changed.
    public static let incrementalPodShare = 4

    /// Builds the resources of `state`; addresses it leaves out are allocated by `allocator`.
    public init(state: ClusterState, options: MeshOptions = MeshOptions(), allocator: AddressAllocator = AddressAllocator(),
                reusing previous: MeshResourceSet? = nil) throws(MeshConversionError) {
        let build: Build
        do {
            build = try previous.flatMap { try Self.buildChanged(state, options: options, allocator: allocator, from: $0) }
                ?? Self.buildAll(state, options: options, allocator: allocator, reusing: previous)
        } catch let error as AddressAllocationError {
            throw .allocation(error)
        } catch let error as PolicyCompileError {
            throw .policy(error)
        } catch {
            throw .resource("\(error)")
        }
        self.state = state
        self.options = options
        plan = build.plan
        snapshot = build.snapshot
        changes = build.changes
        messages = build.builder.messages
        encodedCount = build.builder.encoded
        endpoints = build.endpoints
        peerAuthenticationNames = build.peerAuthenticationNames
        convertedPods = build.convertedPods
    }

    /// What one build makes, before it becomes a set.
    private struct Build {
        var plan: AddressPlan
        var endpoints: ServiceEndpoints
        var builder: Builder
        var snapshot: XDSSnapshot
        var changes: (upserts: [XDSResource], removals: [XDSResourceKey])?
        var peerAuthenticationNames: Set<String>
        var convertedPods: Int
    }

    /// Converts every object of `state`, re-encoding only what changed from `previous`.
    private static func buildAll(_ state: ClusterState, options: MeshOptions, allocator: AddressAllocator,
                                 reusing previous: MeshResourceSet?) throws -> Build {
        let plan = try allocator.plan(for: state)
        let endpoints = ServiceEndpoints(state: state, plan: plan)
        var builder = Builder(previous: previous, incremental: false)
        let names = try convertAll(state: state, plan: plan, endpoints: endpoints, options: options, into: &builder)
        let result = try builder.finish()
        return Build(plan: plan, endpoints: endpoints, builder: builder, snapshot: result.snapshot, changes: nil,
                     peerAuthenticationNames: names, convertedPods: state.pods.count)
    }

    /// Converts only what the changed pods touch, when `state` differs from the state of
    /// `previous` only in pods, and in few enough of them; nil otherwise.
    private static func buildChanged(_ state: ClusterState, options: MeshOptions, allocator: AddressAllocator,
                                     from previous: MeshResourceSet) throws -> Build? {
        let limit = max(16, state.pods.count / incrementalPodShare)
        guard previous.options == options, state.differsOnlyInPods(from: previous.state),
              let pods = PodChanges(from: previous.state.pods, to: state.pods, limit: limit) else { return nil }
        let (plan, moved) = try allocator.plan(for: state, updating: previous.plan, removed: pods.removed, added: pods.added)
        let changed = pods.keys.union(moved)
        guard changed.count <= limit else { return nil }
        let namespaces = Set(changed.map { String(ServiceEndpoints.namespace(ofKey: $0)) })
        let endpoints = ServiceEndpoints(state: state, plan: plan, updating: previous.endpoints, namespaces: namespaces)
        var builder = Builder(previous: previous, incremental: true)
        let names = try convertChanged(changed, namespaces: namespaces, state: state, plan: plan, endpoints: endpoints,
                                       options: options, previous: previous, into: &builder)
        let result = try builder.finish()
        return Build(plan: plan, endpoints: endpoints, builder: builder, snapshot: result.snapshot, changes: result.changes,
                     peerAuthenticationNames: names, convertedPods: changed.count)
    }

    /// Resource count per type URL, for logs.
    public var counts: [String: Int] { snapshot.resources.mapValues(\.count) }

    /// Every resource of `state`; returns the names of the converted PeerAuthentications.
    private static func convertAll(state: ClusterState, plan: AddressPlan, endpoints: ServiceEndpoints,
                                   options: MeshOptions, into builder: inout Builder) throws -> Set<String> {
        let istio = IstioResources(state: state, plan: plan, endpoints: endpoints, options: options)
        let envoy = EnvoyResources(state: state, plan: plan, endpoints: endpoints, options: options)
        for pod in state.pods {
            guard let workload = istio.workload(pod) else { continue }
            try builder.add(workload.uid, address(workload))
        }
        for service in state.services {
            var address = Istio_Workload_Address()
            address.service = istio.service(service)
            try builder.add(istio.addressName(of: service), address)
            guard !service.headless else { continue }
            for port in service.ports where port.protocol == .tcp {
                try builder.add(envoy.clusterName(service, port: port.port), envoy.cluster(service, port: port.port))
                try builder.add(envoy.clusterName(service, port: port.port), envoy.loadAssignment(service, port: port.port))
                try builder.add(envoy.listenerName(service, port: port.port), envoy.listener(service, port: port.port))
                try builder.add(envoy.listenerName(service, port: port.port), envoy.routeConfiguration(service, port: port.port))
            }
        }
        for gateway in state.gateways where !gateway.isWaypoint {
            for port in envoy.httpPorts(gateway) {
                let name = envoy.gatewayListenerName(gateway, port: port)
                try builder.add(name, envoy.gatewayListener(gateway, port: port))
                try builder.add(name, envoy.gatewayRouteConfiguration(gateway, port: port))
            }
        }
        for (name, authorization) in try istio.authorizations() { try builder.add(name, authorization) }
        let peerAuthentications = istio.peerAuthentications()
        for (name, authorization) in peerAuthentications { try builder.add(name, authorization) }
        return Set(peerAuthentications.map(\.name))
    }

    /// The resources that depend on the `changed` pods (whose namespaces are
    /// `namespaces`): their Workloads, the endpoints of their namespaces'
    /// Services, and the Authorizations converted from PeerAuthentications.
    private static func convertChanged(_ changed: Set<String>, namespaces: Set<String>, state: ClusterState, plan: AddressPlan,
                                       endpoints: ServiceEndpoints, options: MeshOptions,
                                       previous: MeshResourceSet, into builder: inout Builder) throws -> Set<String> {
        // The pods of the namespaces touched: the changed ones, and those whose endpoints are converted again.
        var pods: [String: ClusterPod] = [:]
        for pod in state.pods where namespaces.contains(pod.namespace) { pods[pod.key] = pod }
        let istio = IstioResources(state: state, plan: plan, endpoints: endpoints, options: options)
        let envoy = EnvoyResources(state: state, plan: plan, endpoints: endpoints, options: options, pods: pods)
        let addressType = "type.googleapis.com/" + Istio_Workload_Address.protoMessageName
        for key in changed {
            if let workload = pods[key].flatMap({ istio.workload($0) }) {
                try builder.add(workload.uid, address(workload))
            } else {
                builder.remove(XDSResourceKey(typeURL: addressType, name: options.workloadUID(podKey: key)))
            }
        }
        for service in state.services where namespaces.contains(service.namespace) && !service.headless {
            for port in service.ports where port.protocol == .tcp {
                try builder.add(envoy.clusterName(service, port: port.port), envoy.loadAssignment(service, port: port.port))
            }
        }
        guard !state.peerAuthentications.isEmpty || !previous.peerAuthenticationNames.isEmpty else { return [] }
        let peerAuthentications = istio.peerAuthentications()
        for (name, authorization) in peerAuthentications { try builder.add(name, authorization) }
        let names = Set(peerAuthentications.map(\.name))
        let authorizationType = "type.googleapis.com/" + Istio_Security_Authorization.protoMessageName
        for name in previous.peerAuthenticationNames.subtracting(names) {
            builder.remove(XDSResourceKey(typeURL: authorizationType, name: name))
        }
        return names
    }

    private static func address(_ workload: Istio_Workload_Workload) -> Istio_Workload_Address {
        var address = Istio_Workload_Address()
        address.workload = workload
        return address
    }
}

/// The messages behind a set's resources, in 64 tables by key, so that a set
/// built from the previous one by changing a few resources copies only the
/// tables those are in, not thousands of entries.
struct MessageTable: Sendable {
    private var shards = [[XDSResourceKey: any SwiftProtobuf.Message]](repeating: [:], count: 64)

    subscript(key: XDSResourceKey) -> (any SwiftProtobuf.Message)? {
        get { shards[Self.shard(key)][key] }
        set { shards[Self.shard(key)][key] = newValue }
    }

    private static func shard(_ key: XDSResourceKey) -> Int { key.hashValue & 63 }
}

/// Collects resources, reusing a previous set's encoding of an unchanged message.
///
/// Converting everything, it lists every resource. Converting only what changed
/// (`incremental`), it starts from the previous set's resources and records the
/// upserts and removals, whose application to the previous snapshot is the result.
private struct Builder {
    let previous: MeshResourceSet?
    let incremental: Bool
    var resources: [XDSResource] = []
    var messages: MessageTable
    var upserts: [XDSResourceKey: XDSResource] = [:]
    var removals = Set<XDSResourceKey>()
    var encoded = 0

    init(previous: MeshResourceSet?, incremental: Bool) {
        self.previous = previous
        self.incremental = incremental && previous != nil
        if self.incremental, let previous {
            messages = previous.messages
        } else {
            messages = MessageTable()
            resources.reserveCapacity(previous?.snapshot.resources.values.reduce(0) { $0 + $1.count } ?? 0)
        }
    }

    mutating func add(_ name: String, _ message: some SwiftProtobuf.Message) throws {
        let key = XDSResourceKey(typeURL: "type.googleapis.com/" + type(of: message).protoMessageName, name: name)
        if incremental {
            removals.remove(key)
            if let current = messages[key], current.isEqualTo(message: message) { return }
            messages[key] = message
            if let previous, let old = previous.messages[key], old.isEqualTo(message: message) {
                // Back to what the previous set serves (removed, then added again).
                upserts[key] = nil
                return
            }
            upserts[key] = try XDSResource(name: name, message: message)
            encoded += 1
            return
        }
        messages[key] = message
        if let previous, let old = previous.messages[key], old.isEqualTo(message: message),
           let resource = previous.snapshot.resources(ofType: key.typeURL)[name] {
            resources.append(resource)
            return
        }
        resources.append(try XDSResource(name: name, message: message))
        encoded += 1
    }

    /// Drops a resource of the previous set (incremental builds only).
    mutating func remove(_ key: XDSResourceKey) {
        guard messages[key] != nil else { return }
        messages[key] = nil
        upserts[key] = nil
        if previous?.messages[key] != nil { removals.insert(key) }
    }

    func finish() throws(XDSServerError) -> (snapshot: XDSSnapshot, changes: (upserts: [XDSResource], removals: [XDSResourceKey])?) {
        guard incremental, let previous else { return (try XDSSnapshot(resources), nil) }
        let changes = (upserts: Array(upserts.values), removals: Array(removals))
        return (try previous.snapshot.updating(upserting: changes.upserts, removing: changes.removals), changes)
    }
}

/// Why a valid set of manifests could not be turned into resources.
public enum MeshConversionError: Error, Sendable, CustomStringConvertible {
    /// An address range ran out.
    case allocation(AddressAllocationError)
    /// A policy has no form the resource type can carry.
    case policy(PolicyCompileError)
    /// A resource could not be encoded or the snapshot was inconsistent.
    case resource(String)

    public var description: String {
        switch self {
        case .allocation(let e): return "address allocation: \(e)"
        case .policy(let e): return "policy \(e)"
        case .resource(let e): return "resource: \(e)"
        }
    }
}
