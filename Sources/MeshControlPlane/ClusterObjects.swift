import PolicyEngine

/// Where an object was read: file, zero-based document index and the path of
/// the object inside that document (empty for a top-level document, `items[3]`
/// inside a `List`). Cross-object errors (a duplicate IP, a missing service
/// account) point here.
public struct ObjectOrigin: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var document: Int
    public var path: String

    public init(file: String, document: Int, path: String = "") {
        self.file = file
        self.document = document
        self.path = path
    }

    /// An error about `field` (a path relative to the object) of this object.
    public func error(_ kind: PolicyLoadError.Kind, _ message: String, field: String) -> PolicyLoadError {
        PolicyLoadError(file: file, documentIndex: document, fieldPath: path.isEmpty ? field : "\(path).\(field)", kind: kind, message: message)
    }

    public var description: String { "\(file)#\(document)\(path.isEmpty ? "" : " \(path)")" }
}

/// An object read from a manifest, keyed `Kind/namespace/name` (the namespace
/// is empty for cluster-scoped kinds), as duplicates are detected.
public protocol ClusterObject: Sendable {
    /// The Kubernetes kind, e.g. `Pod`.
    static var kind: String { get }
    var namespace: String { get }
    var name: String { get }
    var origin: ObjectOrigin { get }
}

extension ClusterObject {
    /// `Kind/namespace/name`.
    public var objectKey: String { "\(Self.kind)/\(namespace)/\(name)" }
}

extension ClusterNode: ClusterObject {
    public static let kind = "Node"
    /// Nodes are cluster-scoped.
    public var namespace: String { "" }
}

extension ClusterPod: ClusterObject { public static let kind = "Pod" }
extension ClusterService: ClusterObject { public static let kind = "Service" }
extension ClusterServiceAccount: ClusterObject { public static let kind = "ServiceAccount" }
extension ClusterEndpointSlice: ClusterObject { public static let kind = "EndpointSlice" }
extension ClusterPeerAuthentication: ClusterObject { public static let kind = "PeerAuthentication" }
extension ClusterGateway: ClusterObject { public static let kind = "Gateway" }
extension ClusterHTTPRoute: ClusterObject { public static let kind = "HTTPRoute" }

/// A `v1 Node`: where pods run. Its pod CIDR and internal IP are allocated by
/// ``AddressAllocator`` when the manifest leaves them out.
public struct ClusterNode: Hashable, Sendable {
    public var name: String
    public var labels: Labels
    /// `spec.podCIDR`, if the manifest gives one.
    public var podCIDR: CIDR?
    /// The `InternalIP` of `status.addresses`, if the manifest gives one.
    public var internalIP: IPAddress?
    public var origin: ObjectOrigin

    public init(name: String, labels: Labels = [:], podCIDR: CIDR? = nil, internalIP: IPAddress? = nil, origin: ObjectOrigin) {
        self.name = name
        self.labels = labels
        self.podCIDR = podCIDR
        self.internalIP = internalIP
        self.origin = origin
    }
}

/// One container of a pod: what a container runtime (the lab) runs, and its ports.
public struct ContainerSpec: Hashable, Sendable {
    /// A `containers[].ports[]` entry.
    public struct Port: Hashable, Sendable {
        public var name: String?
        public var containerPort: UInt16
        public var `protocol`: TransportProtocol

        public init(name: String? = nil, containerPort: UInt16, protocol: TransportProtocol = .tcp) {
            self.name = name
            self.containerPort = containerPort
            self.protocol = `protocol`
        }
    }

    /// An `env` entry with a literal value (`valueFrom` is not supported).
    public struct EnvVar: Hashable, Sendable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public var name: String
    public var image: String?
    public var command: [String]
    public var args: [String]
    public var env: [EnvVar]
    public var ports: [Port]

    public init(name: String, image: String? = nil, command: [String] = [], args: [String] = [], env: [EnvVar] = [], ports: [Port] = []) {
        self.name = name
        self.image = image
        self.command = command
        self.args = args
        self.env = env
        self.ports = ports
    }
}

/// A `v1 Pod`: its ``Fields``, read and written as the pod's own properties
/// (`pod.labels`, `pod.nodeName`).
///
/// The fields sit behind one immutable reference: a cluster's pods are copied
/// often (sorted, indexed, compared, carried from one state to the next), and a
/// copy then costs one reference count instead of one per field. Setting a
/// field makes a new reference.
@dynamicMemberLookup
public struct ClusterPod: Hashable, Sendable {
    /// What a pod manifest says.
    public struct Fields: Hashable, Sendable {
        public var namespace: String
        public var name: String
        public var labels: Labels
        public var annotations: [String: String]
        public var serviceAccount: String
        /// `spec.nodeName`; a pod without one is pending and gets no address.
        public var nodeName: String?
        /// `status.podIP` and `status.podIPs`, if the manifest gives them.
        public var podIPs: [IPAddress]
        public var containers: [ContainerSpec]
        /// `spec.hostNetwork`: the pod uses its node's network; the mesh does not capture it.
        public var hostNetwork: Bool
        /// `status.phase`, if given (`Succeeded` and `Failed` pods are over).
        public var phase: String?
        /// `status.conditions[type=Ready].status`, if given: a pod that is not ready stays in the
        /// mesh but gets no traffic through its Services.
        public var ready: Bool?
        public var origin: ObjectOrigin
    }

    private final class Box: Sendable {
        let fields: Fields
        /// `namespace/name`, made once.
        let key: String

        init(_ fields: Fields) {
            self.fields = fields
            key = "\(fields.namespace)/\(fields.name)"
        }
    }

    private var box: Box

    // ``ClusterObject``'s properties, which a dynamic member cannot provide.
    public var namespace: String {
        get { self[dynamicMember: \.namespace] }
        set { self[dynamicMember: \.namespace] = newValue }
    }
    public var name: String {
        get { self[dynamicMember: \.name] }
        set { self[dynamicMember: \.name] = newValue }
    }
    public var origin: ObjectOrigin {
        get { self[dynamicMember: \.origin] }
        set { self[dynamicMember: \.origin] = newValue }
    }

    public subscript<Value>(dynamicMember field: WritableKeyPath<Fields, Value>) -> Value {
        get { box.fields[keyPath: field] }
        set {
            var fields = box.fields
            fields[keyPath: field] = newValue
            box = Box(fields)
        }
    }

    public init(namespace: String, name: String, labels: Labels = [:], annotations: [String: String] = [:], serviceAccount: String = "default",
                nodeName: String? = nil, podIPs: [IPAddress] = [], containers: [ContainerSpec] = [], hostNetwork: Bool = false, phase: String? = nil,
                ready: Bool? = nil, origin: ObjectOrigin) {
        box = Box(Fields(namespace: namespace, name: name, labels: labels, annotations: annotations, serviceAccount: serviceAccount,
                         nodeName: nodeName, podIPs: podIPs, containers: containers, hostNetwork: hostNetwork, phase: phase, ready: ready,
                         origin: origin))
    }

    public static func == (lhs: ClusterPod, rhs: ClusterPod) -> Bool { lhs.box === rhs.box || lhs.box.fields == rhs.box.fields }

    public func hash(into hasher: inout Hasher) { hasher.combine(box.fields) }

    /// `namespace/name`.
    public var key: String { box.key }

    /// Whether `other` is a copy of this very value (not merely an equal one): cheap, and
    /// what a state patched from another keeps of the pods it did not touch.
    func isCopy(of other: ClusterPod) -> Bool { box === other.box }

    /// Whether `other` is this pod with the same content, wherever it was read
    /// (an edit earlier in a multi-document file moves the origin of the pods after it).
    public func sameSpec(as other: ClusterPod) -> Bool {
        if box === other.box { return true }
        var fields = box.fields
        fields.origin = other.box.fields.origin
        return fields == other.box.fields
    }

    /// False once the pod has ended (`Succeeded` or `Failed`): it has no workload, endpoint or identity any more.
    public var isRunning: Bool { self.phase != "Succeeded" && self.phase != "Failed" }

    /// False when the pod's `Ready` condition says so; a pod without one counts as ready.
    public var isReady: Bool { self.ready != false }

    /// True for a pod the mesh serves: running, and on its own network (not `hostNetwork`).
    public var isMeshCandidate: Bool { isRunning && !self.hostNetwork }

    /// The port a named container port resolves to, if any container declares it.
    public func containerPort(named name: String, protocol proto: TransportProtocol) -> UInt16? {
        for container in self.containers {
            if let port = container.ports.first(where: { $0.name == name && $0.protocol == proto }) { return port.containerPort }
        }
        return nil
    }
}

/// A `v1 Service`.
public struct ClusterService: Hashable, Sendable {
    /// `spec.ports[].targetPort`: a number, or the name of a container port.
    public enum TargetPort: Hashable, Sendable {
        case number(UInt16)
        case named(String)
    }

    /// A `spec.ports[]` entry.
    public struct Port: Hashable, Sendable {
        public var name: String?
        public var port: UInt16
        public var targetPort: TargetPort
        public var `protocol`: TransportProtocol
        public var appProtocol: String?

        public init(name: String? = nil, port: UInt16, targetPort: TargetPort? = nil, protocol: TransportProtocol = .tcp, appProtocol: String? = nil) {
            self.name = name
            self.port = port
            self.targetPort = targetPort ?? .number(port)
            self.protocol = `protocol`
            self.appProtocol = appProtocol
        }
    }

    public var namespace: String
    public var name: String
    public var labels: Labels
    /// `spec.selector`; nil for a Service whose endpoints come from EndpointSlices only.
    public var selector: Labels?
    public var ports: [Port]
    /// `spec.clusterIP`, if the manifest gives one.
    public var clusterIP: IPAddress?
    /// `clusterIP: None`.
    public var headless: Bool
    public var origin: ObjectOrigin

    public init(namespace: String, name: String, labels: Labels = [:], selector: Labels? = nil, ports: [Port] = [],
                clusterIP: IPAddress? = nil, headless: Bool = false, origin: ObjectOrigin) {
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.selector = selector
        self.ports = ports
        self.clusterIP = clusterIP
        self.headless = headless
        self.origin = origin
    }

    /// `namespace/name`.
    public var key: String { "\(namespace)/\(name)" }

    /// The service's DNS name, `name.namespace.svc.<domain>`.
    public func hostname(domain: String) -> String { "\(name).\(namespace).svc.\(domain)" }
}

/// A `v1 ServiceAccount`.
public struct ClusterServiceAccount: Hashable, Sendable {
    public var namespace: String
    public var name: String
    public var origin: ObjectOrigin

    public init(namespace: String, name: String, origin: ObjectOrigin) {
        self.namespace = namespace
        self.name = name
        self.origin = origin
    }
}

/// A `discovery.k8s.io/v1 EndpointSlice` of a Service (label `kubernetes.io/service-name`).
public struct ClusterEndpointSlice: Hashable, Sendable {
    /// A `ports[]` entry.
    public struct Port: Hashable, Sendable {
        public var name: String?
        public var port: UInt16
        public var `protocol`: TransportProtocol

        public init(name: String? = nil, port: UInt16, protocol: TransportProtocol = .tcp) {
            self.name = name
            self.port = port
            self.protocol = `protocol`
        }
    }

    /// An `endpoints[]` entry.
    public struct Endpoint: Hashable, Sendable {
        public var addresses: [IPAddress]
        /// `conditions.ready` (absent means ready).
        public var ready: Bool
        /// `targetRef` of kind Pod, as `namespace/name`.
        public var pod: String?
        public var nodeName: String?

        public init(addresses: [IPAddress], ready: Bool = true, pod: String? = nil, nodeName: String? = nil) {
            self.addresses = addresses
            self.ready = ready
            self.pod = pod
            self.nodeName = nodeName
        }
    }

    public var namespace: String
    public var name: String
    public var serviceName: String
    public var ports: [Port]
    public var endpoints: [Endpoint]
    public var origin: ObjectOrigin

    public init(namespace: String, name: String, serviceName: String, ports: [Port] = [], endpoints: [Endpoint] = [], origin: ObjectOrigin) {
        self.namespace = namespace
        self.name = name
        self.serviceName = serviceName
        self.ports = ports
        self.endpoints = endpoints
        self.origin = origin
    }
}

/// A `security.istio.io/v1 PeerAuthentication`: whether workloads accept plaintext.
public struct ClusterPeerAuthentication: Hashable, Sendable {
    /// `mtls.mode`.
    public enum Mode: String, Hashable, Sendable {
        case unset = "UNSET"
        case disable = "DISABLE"
        case permissive = "PERMISSIVE"
        case strict = "STRICT"
    }

    public var namespace: String
    public var name: String
    public var selector: LabelSelector?
    public var mode: Mode
    public var portLevelModes: [UInt16: Mode]
    public var origin: ObjectOrigin

    public init(namespace: String, name: String, selector: LabelSelector? = nil, mode: Mode = .unset, portLevelModes: [UInt16: Mode] = [:], origin: ObjectOrigin) {
        self.namespace = namespace
        self.name = name
        self.selector = selector
        self.mode = mode
        self.portLevelModes = portLevelModes
        self.origin = origin
    }
}

/// A `gateway.networking.k8s.io/v1 Gateway` (an ingress or, with
/// `gatewayClassName: istio-waypoint`, a waypoint).
public struct ClusterGateway: Hashable, Sendable {
    /// A `spec.listeners[]` entry.
    public struct Listener: Hashable, Sendable {
        public var name: String
        public var port: UInt16
        public var `protocol`: String
        public var hostname: String?

        public init(name: String, port: UInt16, protocol: String, hostname: String? = nil) {
            self.name = name
            self.port = port
            self.protocol = `protocol`
            self.hostname = hostname
        }
    }

    public var namespace: String
    public var name: String
    public var labels: Labels
    public var gatewayClassName: String
    public var listeners: [Listener]
    public var origin: ObjectOrigin

    public init(namespace: String, name: String, labels: Labels = [:], gatewayClassName: String, listeners: [Listener] = [], origin: ObjectOrigin) {
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.gatewayClassName = gatewayClassName
        self.listeners = listeners
        self.origin = origin
    }

    /// True for an Istio waypoint (`gatewayClassName: istio-waypoint`).
    public var isWaypoint: Bool { gatewayClassName == "istio-waypoint" }

    /// `istio.io/waypoint-for`: which traffic the waypoint handles (`service` by default).
    public var waypointFor: String { labels["istio.io/waypoint-for"] ?? "service" }
}

/// A `gateway.networking.k8s.io/v1 HTTPRoute`.
public struct ClusterHTTPRoute: Hashable, Sendable {
    /// A `parentRefs[]` entry: a Gateway, or a Service (GAMMA, mesh routing).
    public struct ParentReference: Hashable, Sendable {
        public var group: String
        public var kind: String
        public var namespace: String
        public var name: String
        public var port: UInt16?
        public var sectionName: String?

        public init(group: String = "gateway.networking.k8s.io", kind: String = "Gateway", namespace: String, name: String, port: UInt16? = nil, sectionName: String? = nil) {
            self.group = group
            self.kind = kind
            self.namespace = namespace
            self.name = name
            self.port = port
            self.sectionName = sectionName
        }
    }

    /// A `matches[]` entry.
    public struct Match: Hashable, Sendable {
        /// `path.type`.
        public enum PathType: String, Hashable, Sendable {
            case exact = "Exact"
            case prefix = "PathPrefix"
            case regularExpression = "RegularExpression"
        }

        public var pathType: PathType
        public var path: String
        public var method: String?
        /// Exact header matches.
        public var headers: [String: String]

        public init(pathType: PathType = .prefix, path: String = "/", method: String? = nil, headers: [String: String] = [:]) {
            self.pathType = pathType
            self.path = path
            self.method = method
            self.headers = headers
        }
    }

    /// A `backendRefs[]` entry (a Service port).
    public struct Backend: Hashable, Sendable {
        public var namespace: String
        public var name: String
        public var port: UInt16
        public var weight: UInt32

        public init(namespace: String, name: String, port: UInt16, weight: UInt32 = 1) {
            self.namespace = namespace
            self.name = name
            self.port = port
            self.weight = weight
        }
    }

    /// A `rules[]` entry.
    public struct Rule: Hashable, Sendable {
        public var matches: [Match]
        public var backends: [Backend]

        public init(matches: [Match] = [Match()], backends: [Backend] = []) {
            self.matches = matches
            self.backends = backends
        }
    }

    public var namespace: String
    public var name: String
    public var parentRefs: [ParentReference]
    public var hostnames: [String]
    public var rules: [Rule]
    public var origin: ObjectOrigin

    public init(namespace: String, name: String, parentRefs: [ParentReference] = [], hostnames: [String] = [], rules: [Rule] = [], origin: ObjectOrigin) {
        self.namespace = namespace
        self.name = name
        self.parentRefs = parentRefs
        self.hostnames = hostnames
        self.rules = rules
        self.origin = origin
    }
}
