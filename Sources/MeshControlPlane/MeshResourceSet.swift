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
/// Building from a `previous` set re-encodes only the resources whose message
/// changed: the rest keep their encoded form and version, so one pod's edit in
/// a large cluster costs the conversion, not the encoding and hashing of
/// every resource.
public struct MeshResourceSet: Sendable {
    public let state: ClusterState
    public let plan: AddressPlan
    public let snapshot: XDSSnapshot
    /// The message behind each resource, to compare with the next conversion's.
    fileprivate let messages: [XDSResourceKey: any SwiftProtobuf.Message]
    /// How many resources this build encoded (the others were reused from the previous set).
    public let encodedCount: Int

    /// Builds the resources of `state`; addresses it leaves out are allocated by `allocator`.
    public init(state: ClusterState, options: MeshOptions = MeshOptions(), allocator: AddressAllocator = AddressAllocator(),
                reusing previous: MeshResourceSet? = nil) throws(MeshConversionError) {
        let plan: AddressPlan
        do { plan = try allocator.plan(for: state) } catch { throw .allocation(error) }
        let endpoints = ServiceEndpoints(state: state, plan: plan)
        let istio = IstioResources(state: state, plan: plan, endpoints: endpoints, options: options)
        let envoy = EnvoyResources(state: state, plan: plan, endpoints: endpoints, options: options)
        var builder = Builder(previous: previous)
        do {
            for pod in state.pods {
                guard let workload = istio.workload(pod) else { continue }
                var address = Istio_Workload_Address()
                address.workload = workload
                try builder.add(workload.uid, address)
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
            for (name, authorization) in try istio.authorizations() + istio.peerAuthentications() {
                try builder.add(name, authorization)
            }
            self.snapshot = try XDSSnapshot(builder.resources)
            self.messages = builder.messages
            self.encodedCount = builder.encoded
        } catch let error as PolicyCompileError {
            throw .policy(error)
        } catch let error as XDSServerError {
            throw .resource("\(error)")
        } catch {
            throw .resource("\(error)")
        }
        self.state = state
        self.plan = plan
    }

    /// Resource count per type URL, for logs.
    public var counts: [String: Int] { snapshot.resources.mapValues(\.count) }
}

/// Collects resources, reusing a previous set's encoding of an unchanged message.
private struct Builder {
    let previous: MeshResourceSet?
    var resources: [XDSResource] = []
    var messages: [XDSResourceKey: any SwiftProtobuf.Message] = [:]
    var encoded = 0

    init(previous: MeshResourceSet?) {
        self.previous = previous
        resources.reserveCapacity(previous?.messages.count ?? 0)
        messages.reserveCapacity(previous?.messages.count ?? 0)
    }

    mutating func add(_ name: String, _ message: some SwiftProtobuf.Message) throws {
        let key = XDSResourceKey(typeURL: "type.googleapis.com/" + type(of: message).protoMessageName, name: name)
        messages[key] = message
        if let previous, let old = previous.messages[key], old.isEqualTo(message: message),
           let resource = previous.snapshot.resources(ofType: key.typeURL)[name] {
            resources.append(resource)
            return
        }
        resources.append(try XDSResource(name: name, message: message))
        encoded += 1
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
