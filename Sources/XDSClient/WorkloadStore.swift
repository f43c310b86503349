import NIOConcurrencyHelpers

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

/// A change to mesh state as one xDS response carries it: resources added or
/// replaced, and resources removed by key (workload uid, service
/// `namespace/hostname`, policy `namespace/name`).
public struct WorkloadStoreChange: Sendable, Hashable {
    public var upsertedWorkloads: [Workload]
    public var upsertedServices: [Service]
    public var upsertedPolicies: [Authorization]
    /// Workload uids or service keys (`namespace/hostname`) to remove.
    public var removedAddresses: [String]
    /// Policy keys (`namespace/name`) to remove.
    public var removedPolicies: [String]

    public init(
        upsertedWorkloads: [Workload] = [], upsertedServices: [Service] = [], upsertedPolicies: [Authorization] = [],
        removedAddresses: [String] = [], removedPolicies: [String] = []
    ) {
        self.upsertedWorkloads = upsertedWorkloads
        self.upsertedServices = upsertedServices
        self.upsertedPolicies = upsertedPolicies
        self.removedAddresses = removedAddresses
        self.removedPolicies = removedPolicies
    }

    public var isEmpty: Bool {
        upsertedWorkloads.isEmpty && upsertedServices.isEmpty && upsertedPolicies.isEmpty && removedAddresses.isEmpty && removedPolicies.isEmpty
    }
}

/// The one home of mesh state: workloads, services and authorization policies,
/// indexed by uid, network/IP, hostname and VIP.
///
/// Two ways in, both atomic (readers see all of an update or none of it):
/// ``apply(_:)`` replaces everything with a validated snapshot (a local config
/// file) and refuses duplicates; ``update(_:)`` applies one xDS response's
/// upserts and removals in time proportional to the change. For xDS, as in
/// Istio ztunnel, an address claimed by a newer workload or service moves to it.
public final class WorkloadStore: Sendable {
    /// A workload kept behind one reference, so each index slot costs a pointer
    /// rather than the whole struct (a 100,000-workload table has 262,144 slots).
    final class Stored: Sendable {
        let workload: Workload
        init(_ workload: Workload) { self.workload = workload }
    }

    struct Indexes: Sendable {
        var workloads: [String: Stored] = [:]
        var services: [String: Service] = [:]
        var policies: [String: Authorization] = [:]
        /// Address → workload.
        var byAddress: [NetworkAddress: Stored] = [:]
        /// Service key → uid → the workloads backing it (a connection to a Service looks here,
        /// not through every workload).
        var byService: [String: [String: Stored]] = [:]
        /// Hostname → service key.
        var byHostname: [String: String] = [:]
        /// VIP → service key.
        var byVIP: [NetworkAddress: String] = [:]
        /// Policies in key order, for deterministic decisions.
        var orderedPolicies: [Authorization] = []
        var version: UInt64 = 0

        mutating func insert(_ workload: Workload) {
            if let old = workloads[workload.uid] { remove(workload: old.workload) }
            let stored = Stored(workload)
            workloads[workload.uid] = stored
            for ip in workload.workloadIPs { byAddress[NetworkAddress(network: workload.network, address: ip)] = stored }
            for service in workload.services.keys { byService[service, default: [:]][workload.uid] = stored }
        }

        mutating func remove(workload: Workload) {
            workloads[workload.uid] = nil
            for ip in workload.workloadIPs {
                let key = NetworkAddress(network: workload.network, address: ip)
                if byAddress[key]?.workload.uid == workload.uid { byAddress[key] = nil }
            }
            for service in workload.services.keys {
                byService[service]?[workload.uid] = nil
                if byService[service]?.isEmpty == true { byService[service] = nil }
            }
        }

        mutating func insert(_ service: Service) {
            if let old = services[service.key] { remove(service: old) }
            services[service.key] = service
            byHostname[service.hostname] = service.key
            for vip in service.vips { byVIP[vip] = service.key }
        }

        mutating func remove(service: Service) {
            services[service.key] = nil
            if byHostname[service.hostname] == service.key { byHostname[service.hostname] = nil }
            for vip in service.vips where byVIP[vip] == service.key { byVIP[vip] = nil }
        }

        mutating func reorderPolicies() {
            orderedPolicies = policies.values.sorted { $0.key < $1.key }
        }
    }

    private let state = NIOLockedValueBox(Indexes())
    private let observers = NIOLockedValueBox<(next: Int, continuations: [Int: AsyncStream<UInt64>.Continuation])>((0, [:]))

    public init(_ snapshot: WorkloadSnapshot = WorkloadSnapshot()) throws {
        if !snapshot.workloads.isEmpty || !snapshot.services.isEmpty || !snapshot.policies.isEmpty {
            try apply(snapshot)
        }
    }

    /// Validates and indexes `snapshot`, then replaces the state in one step.
    public func apply(_ snapshot: WorkloadSnapshot) throws(WorkloadStoreError) {
        var next = Indexes()
        for workload in snapshot.workloads {
            guard !workload.uid.isEmpty else { throw .missingField("workload.uid") }
            guard next.workloads[workload.uid] == nil else { throw .duplicateUID(workload.uid) }
            for ip in workload.workloadIPs {
                guard IPAddressText.isValid(ip) else { throw .invalidAddress(ip) }
                let key = NetworkAddress(network: workload.network, address: ip)
                guard next.byAddress[key] == nil else { throw .duplicateAddress(key.description) }
            }
            next.insert(workload)
        }
        for service in snapshot.services {
            guard !service.hostname.isEmpty else { throw .missingField("service.hostname") }
            for vip in service.vips {
                guard next.byVIP[vip] == nil else { throw .duplicateAddress(vip.description) }
            }
            next.insert(service)
        }
        for policy in snapshot.policies { next.policies[policy.key] = policy }
        next.reorderPolicies()
        let version = state.withLockedValue { current in
            next.version = current.version + 1
            current = next
            return next.version
        }
        notify(version)
    }

    /// Applies one xDS response's change in one step: removals first, then upserts.
    public func update(_ change: WorkloadStoreChange) {
        guard !change.isEmpty else { return }
        state.withLockedValue { current in
            for key in change.removedAddresses {
                if let stored = current.workloads[key] { current.remove(workload: stored.workload) }
                if let service = current.services[key] { current.remove(service: service) }
            }
            for workload in change.upsertedWorkloads { current.insert(workload) }
            for service in change.upsertedServices { current.insert(service) }
            if !change.removedPolicies.isEmpty || !change.upsertedPolicies.isEmpty {
                for key in change.removedPolicies { current.policies[key] = nil }
                for policy in change.upsertedPolicies { current.policies[policy.key] = policy }
                current.reorderPolicies()
            }
            current.version += 1
        }
        notify(version)
    }

    /// The store's version now, then after every applied snapshot or change
    /// (only the newest is kept for a slow reader).
    public func changes() -> AsyncStream<UInt64> {
        let (stream, continuation) = AsyncStream<UInt64>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = observers.withLockedValue { observers in
            defer { observers.next += 1 }
            observers.continuations[observers.next] = continuation
            return observers.next
        }
        continuation.onTermination = { [weak self] _ in _ = self?.observers.withLockedValue { $0.continuations.removeValue(forKey: id) } }
        continuation.yield(version)
        return stream
    }

    private func notify(_ version: UInt64) {
        for continuation in observers.withLockedValue({ Array($0.continuations.values) }) { continuation.yield(version) }
    }

    /// The workloads that run on `node`.
    public func workloads(onNode node: String) -> [Workload] {
        state.withLockedValue { $0.workloads.values.map(\.workload).filter { $0.node == node } }
    }

    /// The workload of this node at `address`, the identity a node proxy presents for it.
    public func localWorkload(address: String, node: String) -> Workload? {
        workload(address: address).flatMap { $0.node == node ? $0 : nil }
    }

    /// Increments with every applied snapshot or change.
    public var version: UInt64 { state.withLockedValue { $0.version } }
    /// Everything, ordered by uid, service key and policy key.
    public var snapshot: WorkloadSnapshot {
        state.withLockedValue { indexes in
            WorkloadSnapshot(
                workloads: indexes.workloads.values.map(\.workload).sorted { $0.uid < $1.uid },
                services: indexes.services.values.sorted { $0.key < $1.key },
                policies: indexes.orderedPolicies
            )
        }
    }
    /// How many workloads, services and policies are stored.
    public var counts: (workloads: Int, services: Int, policies: Int) {
        state.withLockedValue { ($0.workloads.count, $0.services.count, $0.policies.count) }
    }

    public func workload(uid: String) -> Workload? { state.withLockedValue { $0.workloads[uid]?.workload } }
    public func workload(address: String, network: String = "") -> Workload? {
        state.withLockedValue { indexes in
            indexes.byAddress[NetworkAddress(network: network, address: address)]?.workload
        }
    }
    public func service(hostname: String) -> Service? {
        state.withLockedValue { indexes in indexes.byHostname[hostname].flatMap { indexes.services[$0] } }
    }
    public func service(vip: String, network: String = "") -> Service? {
        state.withLockedValue { indexes in
            indexes.byVIP[NetworkAddress(network: network, address: vip)].flatMap { indexes.services[$0] }
        }
    }
    /// A policy by `namespace/name`.
    public func policy(key: String) -> Authorization? { state.withLockedValue { $0.policies[key] } }
    /// Workloads backing a service (healthy or not), ordered by uid.
    public func endpoints(of service: Service) -> [Workload] {
        let backing = state.withLockedValue { $0.byService[service.key].map { Array($0.values) } ?? [] }
        return backing.map(\.workload).sorted { $0.uid < $1.uid }
    }
    /// Decides an L4 connection to `connection.destination` with the stored policies.
    public func authorize(_ connection: L4Connection) -> L4Decision {
        state.withLockedValue { $0.orderedPolicies }.evaluate(connection)
    }
}
