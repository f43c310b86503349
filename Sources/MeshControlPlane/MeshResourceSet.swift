import MeshProto
import PolicyEngine
import XDSServer

/// Everything a control plane serves for one ``ClusterState``: the address
/// plan and every xDS resource (Istio Address and Authorization, Envoy LDS,
/// RDS, CDS and EDS), built by ``IstioResources`` and ``EnvoyResources``.
///
/// Resource versions are digests of their content, so the same manifests give
/// the same versions in any process: a restarted control plane serves
/// reconnecting clients nothing new.
public struct MeshResourceSet: Sendable {
    public let state: ClusterState
    public let plan: AddressPlan
    public let snapshot: XDSSnapshot

    /// Builds the resources of `state`; addresses it leaves out are allocated by `allocator`.
    public init(state: ClusterState, options: MeshOptions = MeshOptions(), allocator: AddressAllocator = AddressAllocator()) throws(MeshConversionError) {
        let plan: AddressPlan
        do { plan = try allocator.plan(for: state) } catch { throw .allocation(error) }
        let endpoints = ServiceEndpoints(state: state, plan: plan)
        let istio = IstioResources(state: state, plan: plan, endpoints: endpoints, options: options)
        let envoy = EnvoyResources(state: state, plan: plan, endpoints: endpoints, options: options)
        var resources: [XDSResource] = []
        do {
            for pod in state.pods {
                guard let workload = istio.workload(pod) else { continue }
                var address = Istio_Workload_Address()
                address.workload = workload
                resources.append(try XDSResource(name: workload.uid, message: address))
            }
            for service in state.services {
                var address = Istio_Workload_Address()
                address.service = istio.service(service)
                resources.append(try XDSResource(name: istio.addressName(of: service), message: address))
                guard !service.headless else { continue }
                for port in service.ports where port.protocol == .tcp {
                    resources.append(try XDSResource(name: envoy.clusterName(service, port: port.port), message: envoy.cluster(service, port: port.port)))
                    resources.append(try XDSResource(name: envoy.clusterName(service, port: port.port), message: envoy.loadAssignment(service, port: port.port)))
                    resources.append(try XDSResource(name: envoy.listenerName(service, port: port.port), message: envoy.listener(service, port: port.port)))
                    resources.append(try XDSResource(name: envoy.listenerName(service, port: port.port), message: envoy.routeConfiguration(service, port: port.port)))
                }
            }
            for gateway in state.gateways where !gateway.isWaypoint {
                for listener in gateway.listeners where listener.protocol == "HTTP" {
                    let name = envoy.gatewayListenerName(gateway, listener)
                    resources.append(try XDSResource(name: name, message: envoy.gatewayListener(gateway, listener)))
                    resources.append(try XDSResource(name: name, message: envoy.gatewayRouteConfiguration(gateway, listener)))
                }
            }
            for (name, authorization) in try istio.authorizations() + istio.peerAuthentications() {
                resources.append(try XDSResource(name: name, message: authorization))
            }
            self.snapshot = try XDSSnapshot(resources)
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
