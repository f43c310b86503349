import Logging

/// Keeps a ``WorkloadStore`` in step with a control plane, as Istio ztunnel
/// does: subscribes to every Istio `Address` and `Authorization` over an
/// ``ADSClient`` and applies each accepted response to the store as one
/// atomic ``WorkloadStoreChange``, in time proportional to what changed.
///
/// Responses the model cannot represent are NACKed by the client before they
/// reach the store, so the store only ever holds accepted state; while the
/// client reconnects, the store keeps serving the last of it.
///
/// ```swift
/// let store = try WorkloadStore()
/// let sync = WorkloadStoreSync(client: client, store: store)
/// async let syncing: Void = sync.run()
/// async let running: Void = client.run()
/// ```
public struct WorkloadStoreSync: Sendable {
    /// The client the resources come from.
    public let client: ADSClient
    /// The store kept in step.
    public let store: WorkloadStore
    private let logger: Logger
    private let addresses: AsyncStream<XDSWatchUpdate<MeshAddress>>
    private let policies: AsyncStream<XDSWatchUpdate<Authorization>>

    /// The resource types as the sync subscribes them: the store keeps the one copy of the state.
    static let addressType = XDSResourceType.meshAddress.retainingValues(false)
    static let policyType = XDSResourceType.meshAuthorization.retainingValues(false)

    /// Subscribes `client` to all addresses and authorizations (wildcard). Updates
    /// are buffered from here on, so none is missed before ``run()``.
    public init(client: ADSClient, store: WorkloadStore, logger: Logger = Logger(label: "swift-mesh.workload-sync")) {
        self.client = client
        self.store = store
        self.logger = logger
        addresses = client.watch(Self.addressType)
        policies = client.watch(Self.policyType)
        client.subscribe(Self.addressType, to: .wildcard)
        client.subscribe(Self.policyType, to: .wildcard)
    }

    /// Applies updates until the client shuts down. Call it once.
    public func run() async {
        let addresses = self.addresses
        let policies = self.policies
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await update in addresses { apply(addresses: update) }
            }
            group.addTask {
                for await update in policies { apply(policies: update) }
            }
        }
    }

    func apply(addresses update: XDSWatchUpdate<MeshAddress>) {
        var change = WorkloadStoreChange(removedAddresses: Array(update.removed))
        for name in update.updated {
            switch update[name] {
            case .workload(let workload): change.upsertedWorkloads.append(workload)
            case .service(let service): change.upsertedServices.append(service)
            case nil: break
            }
        }
        store.update(change)
        logger.debug("addresses applied", metadata: [
            "updated": "\(update.updated.count)", "removed": "\(update.removed.count)", "total": "\(update.count)",
        ])
    }

    func apply(policies update: XDSWatchUpdate<Authorization>) {
        var change = WorkloadStoreChange(removedPolicies: Array(update.removed))
        change.upsertedPolicies = update.updated.compactMap { update[$0] }
        store.update(change)
        logger.debug("authorizations applied", metadata: [
            "updated": "\(update.updated.count)", "removed": "\(update.removed.count)", "total": "\(update.count)",
        ])
    }
}
