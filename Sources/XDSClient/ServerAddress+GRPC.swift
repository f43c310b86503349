import GRPCNIOTransportHTTP2
import MeshIdentity

// MeshIdentity has no gRPC, so each gRPC client module maps the address itself.
extension ServerAddress {
    /// grpc-swift's target for this address (DNS names are resolved by the transport).
    var grpcTarget: any ResolvableTarget {
        switch kind {
        case .ipv4: return .ipv4(address: host, port: port)
        case .ipv6: return .ipv6(address: host, port: port)
        case .dns: return .dns(host: host, port: port)
        }
    }
}
