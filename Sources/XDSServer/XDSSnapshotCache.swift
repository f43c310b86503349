import Foundation

/// Holds the current ``XDSSnapshot`` per node ID and notifies the streams of
/// that node when it changes.
///
/// Control planes call ``setSnapshot(_:forNode:)``; every connected ADS stream
/// whose node has that ID recomputes and pushes what changed.
public actor XDSSnapshotCache {
    private struct Watcher {
        let continuation: AsyncStream<XDSSnapshot>.Continuation
    }

    private var snapshots: [String: XDSSnapshot] = [:]
    private var watchers: [String: [UUID: Watcher]] = [:]
    /// Served to nodes without a snapshot of their own (a mesh where every node sees everything).
    private var fallback: XDSSnapshot?

    /// Creates an empty cache.
    public init() {}

    /// Replaces the snapshot of `nodeID` and notifies its streams.
    public func setSnapshot(_ snapshot: XDSSnapshot, forNode nodeID: String) {
        snapshots[nodeID] = snapshot
        for watcher in watchers[nodeID, default: [:]].values {
            watcher.continuation.yield(snapshot)
        }
    }

    /// Applies an incremental change to the snapshot of `nodeID` (an empty one if none) and
    /// notifies its streams. Validation errors leave the current snapshot in place.
    public func updateSnapshot(forNode nodeID: String, upserting upserts: [XDSResource] = [], removing removals: [XDSResourceKey] = []) throws(XDSServerError) {
        let current = snapshots[nodeID] ?? XDSSnapshot()
        setSnapshot(try current.updating(upserting: upserts, removing: removals), forNode: nodeID)
    }

    /// Serves `snapshot` to every node that has no snapshot of its own (as istiod
    /// pushes every workload to every ztunnel); their streams get it now.
    public func setSnapshotForAllNodes(_ snapshot: XDSSnapshot) {
        fallback = snapshot
        for (nodeID, nodeWatchers) in watchers where snapshots[nodeID] == nil {
            for watcher in nodeWatchers.values { watcher.continuation.yield(snapshot) }
        }
    }

    /// Applies an incremental change to the all-nodes snapshot (an empty one if none).
    public func updateSnapshotForAllNodes(upserting upserts: [XDSResource] = [], removing removals: [XDSResourceKey] = []) throws(XDSServerError) {
        setSnapshotForAllNodes(try (fallback ?? XDSSnapshot()).updating(upserting: upserts, removing: removals))
    }

    /// Removes the snapshot of `nodeID`; its streams keep their last state.
    public func clearSnapshot(forNode nodeID: String) {
        snapshots[nodeID] = nil
    }

    /// The snapshot `nodeID` is served: its own, else the all-nodes one, if any.
    public func snapshot(forNode nodeID: String) -> XDSSnapshot? {
        snapshots[nodeID] ?? fallback
    }

    /// The node IDs that have a snapshot.
    public var nodeIDs: [String] { Array(snapshots.keys) }

    /// A stream of snapshots for `nodeID`: the current one (if any), then every replacement.
    ///
    /// Only the newest snapshot matters to a stream, so the buffer keeps one.
    func watch(nodeID: String) -> AsyncStream<XDSSnapshot> {
        let id = UUID()
        let (stream, continuation) = AsyncStream<XDSSnapshot>.makeStream(bufferingPolicy: .bufferingNewest(1))
        watchers[nodeID, default: [:]][id] = Watcher(continuation: continuation)
        if let current = snapshots[nodeID] ?? fallback { continuation.yield(current) }
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            Task { await self.removeWatcher(nodeID: nodeID, id: id) }
        }
        return stream
    }

    private func removeWatcher(nodeID: String, id: UUID) {
        watchers[nodeID]?[id] = nil
        if watchers[nodeID]?.isEmpty == true { watchers[nodeID] = nil }
    }
}
