import MeshProto
import SwiftProtobuf

/// How an ADS client turns the resources of one type URL into typed values:
/// the type URL, a decoder, how to name a resource that arrives without a
/// name, and a validation hook whose refusal NACKs the whole response.
///
/// ```swift
/// let clusters = XDSResourceType.cluster.validated { cluster in
///     guard cluster.connectTimeout.seconds <= 60 else { throw ClusterTooSlow() }
/// }
/// client.subscribe(clusters, to: .wildcard)
/// for await update in client.watch(clusters) { print(update.names) }
/// ```
public struct XDSResourceType<Value: Sendable & Equatable>: Sendable {
    /// The type URL, e.g. `type.googleapis.com/envoy.config.cluster.v3.Cluster`.
    public let typeURL: String
    /// Whether a state-of-the-world response always carries every subscribed
    /// resource (Envoy's rule for Listener and Cluster), so that a resource
    /// missing from a response has been removed.
    public let stateOfTheWorldIsComplete: Bool
    /// Whether the client keeps every decoded value (true by default), so that
    /// watches can read the whole current set. A consumer that applies each
    /// update to its own store (``WorkloadStoreSync``) turns it off and keeps
    /// one copy of the state instead of two.
    public private(set) var retainsValues = true
    let decode: @Sendable (Google_Protobuf_Any) throws -> Value
    let name: @Sendable (Value) -> String
    let validate: @Sendable (Value) throws -> Void

    /// Describes a type from a decoder and a naming function.
    public init(
        typeURL: String,
        stateOfTheWorldIsComplete: Bool = false,
        decode: @escaping @Sendable (Google_Protobuf_Any) throws -> Value,
        name: @escaping @Sendable (Value) -> String
    ) {
        self.init(typeURL: typeURL, stateOfTheWorldIsComplete: stateOfTheWorldIsComplete, decode: decode, name: name, validate: { _ in })
    }

    private init(
        typeURL: String,
        stateOfTheWorldIsComplete: Bool,
        decode: @escaping @Sendable (Google_Protobuf_Any) throws -> Value,
        name: @escaping @Sendable (Value) -> String,
        validate: @escaping @Sendable (Value) throws -> Void
    ) {
        self.typeURL = typeURL
        self.stateOfTheWorldIsComplete = stateOfTheWorldIsComplete
        self.decode = decode
        self.name = name
        self.validate = validate
    }

    /// The same type with an extra validation hook: when it throws for any
    /// resource of a response, that response is NACKed with the error's text
    /// and none of it is applied.
    public func validated(_ check: @escaping @Sendable (Value) throws -> Void) -> XDSResourceType<Value> {
        let previous = validate
        var copy = XDSResourceType(
            typeURL: typeURL, stateOfTheWorldIsComplete: stateOfTheWorldIsComplete, decode: decode, name: name,
            validate: { value in
                try previous(value)
                try check(value)
            }
        )
        copy.retainsValues = retainsValues
        return copy
    }

    /// The same type, keeping decoded values in the client (the default) or only
    /// names and versions; see ``retainsValues``.
    public func retainingValues(_ retain: Bool) -> XDSResourceType<Value> {
        var copy = self
        copy.retainsValues = retain
        return copy
    }

    /// A protobuf message type, named by `name`, packed as `type.googleapis.com/<full message name>`.
    public static func message(
        _ type: Value.Type,
        stateOfTheWorldIsComplete: Bool = false,
        name: @escaping @Sendable (Value) -> String
    ) -> XDSResourceType<Value> where Value: SwiftProtobuf.Message {
        XDSResourceType(
            typeURL: "type.googleapis.com/" + Value.protoMessageName,
            stateOfTheWorldIsComplete: stateOfTheWorldIsComplete,
            decode: { any in try Value(serializedBytes: any.value) },
            name: name
        )
    }
}

extension XDSResourceType where Value == Envoy_Config_Listener_V3_Listener {
    /// Envoy `Listener` (LDS).
    public static var listener: Self { .message(Value.self, stateOfTheWorldIsComplete: true, name: \.name) }
}

extension XDSResourceType where Value == Envoy_Config_Cluster_V3_Cluster {
    /// Envoy `Cluster` (CDS).
    public static var cluster: Self { .message(Value.self, stateOfTheWorldIsComplete: true, name: \.name) }
}

extension XDSResourceType where Value == Envoy_Config_Route_V3_RouteConfiguration {
    /// Envoy `RouteConfiguration` (RDS).
    public static var routeConfiguration: Self { .message(Value.self, name: \.name) }
}

extension XDSResourceType where Value == Envoy_Config_Endpoint_V3_ClusterLoadAssignment {
    /// Envoy `ClusterLoadAssignment` (EDS), named by cluster.
    public static var clusterLoadAssignment: Self { .message(Value.self, name: \.clusterName) }
}

extension XDSResourceType where Value == Envoy_Extensions_TransportSockets_Tls_V3_Secret {
    /// Envoy TLS `Secret` (SDS).
    public static var secret: Self { .message(Value.self, name: \.name) }
}

extension XDSResourceType where Value == Istio_Workload_Address {
    /// Istio ambient `Address` as the raw protobuf (a workload by uid, or a
    /// service by `namespace/hostname`). ``XDSResourceType/meshAddress`` decodes
    /// straight into WorkloadStore's model instead.
    public static var address: Self {
        .message(Value.self, name: { address in
            switch address.type {
            case .workload(let workload): return workload.uid
            case .service(let service): return "\(service.namespace)/\(service.hostname)"
            case nil: return ""
            }
        })
    }
}

extension XDSResourceType where Value == Istio_Security_Authorization {
    /// Istio ambient L4 `Authorization` as the raw protobuf, named `namespace/name`.
    public static var authorization: Self {
        .message(Value.self, name: { "\($0.namespace)/\($0.name)" })
    }
}
