import Synchronization

/// Errors from building or applying mesh state.
public enum WorkloadStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    case duplicateUID(String)
    case duplicateAddress(String)
    case invalidAddress(String)
    case missingField(String)
    case invalidValue(field: String, value: String)

    public var description: String {
        switch self {
        case .duplicateUID(let uid): return "two workloads have uid \(uid); uids must be unique"
        case .duplicateAddress(let address): return "address \(address) belongs to two workloads or services"
        case .invalidAddress(let value): return "\"\(value)\" is not an IP address (expected ip or network/ip)"
        case .missingField(let field): return "required field \(field) is missing or empty"
        case .invalidValue(let field, let value): return "invalid value \"\(value)\" for \(field)"
        }
    }
}

/// A complete, validated set of mesh state: what one xDS push or one local config file yields.
public struct WorkloadSnapshot: Sendable, Hashable {
    public var workloads: [Workload]
    public var services: [Service]
    public var policies: [Authorization]

    public init(workloads: [Workload] = [], services: [Service] = [], policies: [Authorization] = []) {
        self.workloads = workloads
        self.services = services
        self.policies = policies
    }
}

/// The one home of mesh state: workloads, services and authorization policies,
/// indexed by uid, network/IP, hostname and VIP. Updates are applied atomically:
/// a snapshot that fails validation leaves the previous state untouched.
public final class WorkloadStore: Sendable {
    struct Indexes: Sendable {
        var snapshot = WorkloadSnapshot()
        var byUID: [String: Workload] = [:]
        var byAddress: [NetworkAddress: Workload] = [:]
        var byHostname: [String: Service] = [:]
        var byVIP: [NetworkAddress: Service] = [:]
        var version: UInt64 = 0
    }

    private let state = Mutex(Indexes())

    public init(_ snapshot: WorkloadSnapshot = WorkloadSnapshot()) throws {
        if !snapshot.workloads.isEmpty || !snapshot.services.isEmpty || !snapshot.policies.isEmpty {
            try apply(snapshot)
        }
    }

    /// Validates and indexes `snapshot`, then replaces the state in one step.
    public func apply(_ snapshot: WorkloadSnapshot) throws(WorkloadStoreError) {
        var next = Indexes(snapshot: snapshot)
        for workload in snapshot.workloads {
            guard !workload.uid.isEmpty else { throw .missingField("workload.uid") }
            guard next.byUID[workload.uid] == nil else { throw .duplicateUID(workload.uid) }
            next.byUID[workload.uid] = workload
            for ip in workload.workloadIPs {
                guard IPAddressText.isValid(ip) else { throw .invalidAddress(ip) }
                let key = NetworkAddress(network: workload.network, address: ip)
                guard next.byAddress[key] == nil else { throw .duplicateAddress(key.description) }
                next.byAddress[key] = workload
            }
        }
        for service in snapshot.services {
            guard !service.hostname.isEmpty else { throw .missingField("service.hostname") }
            next.byHostname[service.hostname] = service
            for vip in service.vips {
                guard next.byVIP[vip] == nil else { throw .duplicateAddress(vip.description) }
                next.byVIP[vip] = service
            }
        }
        state.withLock { current in
            next.version = current.version + 1
            current = next
        }
    }

    /// Increments with every applied snapshot.
    public var version: UInt64 { state.withLock { $0.version } }
    public var snapshot: WorkloadSnapshot { state.withLock { $0.snapshot } }

    public func workload(uid: String) -> Workload? { state.withLock { $0.byUID[uid] } }
    public func workload(address: String, network: String = "") -> Workload? {
        state.withLock { $0.byAddress[NetworkAddress(network: network, address: address)] }
    }
    public func service(hostname: String) -> Service? { state.withLock { $0.byHostname[hostname] } }
    public func service(vip: String, network: String = "") -> Service? {
        state.withLock { $0.byVIP[NetworkAddress(network: network, address: vip)] }
    }
    /// Workloads backing a service.
    public func endpoints(of service: Service) -> [Workload] {
        state.withLock { $0.snapshot.workloads.filter { $0.services[service.key] != nil } }
    }
    /// Decides an L4 connection to `connection.destination` with the stored policies.
    public func authorize(_ connection: L4Connection) -> L4Decision {
        state.withLock { $0.snapshot.policies }.evaluate(connection)
    }
}
