import Foundation
import NIOConcurrencyHelpers
import Logging
import MeshIdentity
import IdentityServices
import PolicyEngine
import XDSServer

/// The control plane's state machine: takes cluster states from a
/// ``ClusterSource``, converts each into a ``MeshResourceSet`` and installs it
/// in an ``XDSSnapshotCache`` as one atomic step (only what changed is pushed).
/// A refused configuration (invalid manifests, or manifests that cannot be
/// converted) changes nothing: the last good state keeps being served, and the
/// refusal is logged with file, document and field path and counted.
///
/// It is also the CA's impersonation policy (``NodeImpersonationRule`` over the
/// current state).
public actor ControlPlane: IstioCAImpersonationPolicy {
    public nonisolated let cache: XDSSnapshotCache
    public nonisolated let options: MeshOptions
    public nonisolated let allocator: AddressAllocator
    public nonisolated let metrics: ControlPlaneMetrics
    private let logger: Logger
    private nonisolated let rule: NodeImpersonationRule
    /// The set being served.
    public private(set) var current: MeshResourceSet? {
        didSet { served.withLockedValue { $0 = current } }
    }
    /// ``current``, readable without waiting for the actor (which is busy while a
    /// large configuration converts): the CA's check and readiness read this.
    private let served = NIOLockedValueBox<MeshResourceSet?>(nil)
    /// The last refusal, while it is not superseded by a good state.
    public private(set) var lastRefusal: String?
    /// Number of states applied, the first and those that changed nothing included.
    public private(set) var generation = 0

    public init(cache: XDSSnapshotCache, options: MeshOptions = MeshOptions(), allocator: AddressAllocator = AddressAllocator(),
                metrics: ControlPlaneMetrics = ControlPlaneMetrics(), logger: Logger = Logger(label: "swift-mesh.controlplane")) {
        self.cache = cache
        self.options = options
        self.allocator = allocator
        self.metrics = metrics
        self.logger = logger
        self.rule = NodeImpersonationRule(trustDomain: options.trustDomain)
    }

    /// Applies every event of `source` until the task is cancelled or the source ends.
    public func run(source: some ClusterSource) async {
        for await event in source.events() {
            if Task.isCancelled { break }
            await apply(event)
        }
    }

    /// Applies one event; returns true when a new state is being served.
    /// Calls are applied one at a time, in the order they arrive.
    @discardableResult
    public func apply(_ event: ClusterSourceEvent) async -> Bool {
        await acquireApply()
        defer { releaseApply() }
        return await applyExclusively(event)
    }

    private var applying = false
    private var applyWaiters: [CheckedContinuation<Void, Never>] = []

    private func acquireApply() async {
        guard applying else {
            applying = true
            return
        }
        await withCheckedContinuation { applyWaiters.append($0) }
    }

    private func releaseApply() {
        if applyWaiters.isEmpty { applying = false } else { applyWaiters.removeFirst().resume() }
    }

    private func applyExclusively(_ event: ClusterSourceEvent) async -> Bool {
        switch event {
        case .refused(let error):
            refuse("\(error)", file: error.file, field: error.fieldPath)
            return false
        case .loaded(let state):
            let next: MeshResourceSet
            do { next = try MeshResourceSet(state: state, options: options, allocator: allocator, reusing: current) } catch {
                refuse("\(error)", file: "", field: "")
                return false
            }
            // A set built from the pods that changed names its changes; otherwise compare every resource.
            let (upserts, removals) = next.changes ?? (current?.snapshot ?? XDSSnapshot()).changes(to: next.snapshot)
            if current != nil, upserts.isEmpty, removals.isEmpty {
                // Re-read with the same outcome (a touched file, a refusal fixed back): nothing to push.
                current = next
                lastRefusal = nil
                generation += 1
                logger.debug("configuration re-read; no resource changed")
                return true
            }
            if current == nil {
                await cache.setSnapshotForAllNodes(next.snapshot)
            } else {
                // One step, naming only what changed, so delta streams look at just those names.
                do { try await cache.updateSnapshotForAllNodes(upserting: upserts, removing: removals) } catch {
                    refuse("\(error)", file: "", field: "")
                    return false
                }
            }
            current = next
            lastRefusal = nil
            generation += 1
            logger.notice(generation == 1 ? "serving configuration" : "configuration changed", metadata: [
                "pods": "\(state.pods.count)", "services": "\(state.services.count)", "nodes": "\(state.nodes.count)",
                "policies": "\(state.policies.authorizationPolicies.count)",
                "upserted": "\(Self.describe(upserts.map { ($0.typeURL, $0.name) }))",
                "removed": "\(Self.describe(removals.map { ($0.typeURL, $0.name) }))",
            ])
            return true
        }
    }

    private func refuse(_ message: String, file: String, field: String) {
        metrics.configRefused()
        lastRefusal = message
        logger.error("configuration refused; still serving the last good one", metadata: ["error": "\(message)", "file": "\(file)", "field": "\(field)"])
    }

    /// `3 (wds: a, b; cds: c)` with at most five names per type.
    static func describe(_ keys: [(String, String)]) -> String {
        guard !keys.isEmpty else { return "0" }
        let grouped = Dictionary(grouping: keys, by: { ControlPlaneMetrics.shortType($0.0) })
        let parts = grouped.keys.sorted().map { type -> String in
            let names = grouped[type]!.map(\.1).sorted()
            let shown = names.prefix(5).joined(separator: ", ")
            return "\(type): \(shown)\(names.count > 5 ? ", +\(names.count - 5)" : "")"
        }
        return "\(keys.count) (\(parts.joined(separator: "; ")))"
    }

    /// The set being served, without waiting for a conversion in progress.
    public nonisolated var servedSet: MeshResourceSet? { served.withLockedValue { $0 } }

    public nonisolated func refusal(caller: SPIFFEID, requested: SPIFFEID) async -> String? {
        rule.refusal(caller: caller, requested: requested, state: servedSet?.state)
    }
}
