import Foundation
import NIOConcurrencyHelpers
import PolicyEngine

/// One outcome of reading the cluster's configuration.
public enum ClusterSourceEvent: Sendable {
    /// The whole configuration read and validated.
    case loaded(ClusterState)
    /// The configuration was refused; the last good state stays in force.
    case refused(PolicyLoadError)
}

/// Where cluster objects come from. The manifest directory is the embedded
/// default; a Kubernetes list/watch source would conform too.
public protocol ClusterSource: Sendable {
    /// The first state (or refusal), then one event per change.
    func events() -> AsyncStream<ClusterSourceEvent>
}

/// Reads a manifest directory tree and re-reads it whenever a file is added,
/// removed or modified.
///
/// On Linux the tree is watched with inotify (``ManifestWatcher``): an edit is
/// read once the tree has been quiet for `quietPeriod` (so a file being written
/// is not read half-way; at the latest after a second of changes without a
/// pause), and only the files named by the events are looked at
/// again; an unchanged tree costs nothing but a full walk every `resyncInterval`,
/// a safety net for changes inotify cannot see (a network file system written
/// from elsewhere). Where inotify is unavailable, or its watch limit
/// (`fs.inotify.max_user_watches`) is reached, the tree is polled every
/// `pollInterval` by path, size, modification time and inode, and an edit is
/// picked up once the file has been unchanged for one poll.
public struct DirectoryClusterSource: ClusterSource {
    public let directory: String
    public let pollInterval: Duration
    public let quietPeriod: Duration
    public let resyncInterval: Duration
    /// Whether to watch with inotify (false: always poll).
    public let inotify: Bool
    public let loader: ClusterManifestLoader
    /// Decoded files, reused while unchanged: a reload reads only what changed.
    private let cache = ManifestCache()

    public init(directory: String, pollInterval: Duration = .milliseconds(200), quietPeriod: Duration = .milliseconds(20),
                resyncInterval: Duration = .seconds(60), inotify: Bool = true, loader: ClusterManifestLoader = ClusterManifestLoader()) {
        self.directory = directory
        self.inotify = inotify
        self.pollInterval = pollInterval
        self.quietPeriod = quietPeriod
        self.resyncInterval = resyncInterval
        self.loader = loader
    }

    /// Reads the directory now (only the files that changed since the last read are decoded).
    public func load() -> ClusterSourceEvent {
        do { return .loaded(try loader.load(directory: directory, cache: cache)) } catch { return .refused(error) }
    }

    /// Reads the files of a scan just made (nil: the directory could not be walked, which `load()` reports).
    private func load(_ stamps: [String: FileStamp]?) -> ClusterSourceEvent {
        guard let stamps else { return load() }
        do { return .loaded(try loader.load(directory: directory, stamps: stamps, cache: cache)) } catch { return .refused(error) }
    }

    /// The file list of the tree at one moment (nil: it could not be walked).
    private struct TreeStamps: Sendable {
        var files: [String: FileStamp]?
    }

    /// The first read, then one event per change, until the stream is dropped or its
    /// consumer cancelled. A thread of its own watches (it blocks in `poll(2)`) and
    /// passes on the tree's file list; a task reads and decodes the files. While a
    /// read is under way (seconds for a whole tree of 10,000 pods) the watch goes on,
    /// and the changes it sees meanwhile become one read of the newest list.
    public func events() -> AsyncStream<ClusterSourceEvent> {
        let (stream, continuation) = AsyncStream<ClusterSourceEvent>.makeStream(bufferingPolicy: .bufferingNewest(1))
        // Only the newest file list matters: it describes the whole tree.
        let (trees, changed) = AsyncStream<TreeStamps>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let reader = Task { [self] in
            for await tree in trees { continuation.yield(load(tree.files)) }
            continuation.finish()
        }
        let stopped = NIOLockedValueBox(false)
        continuation.onTermination = { _ in
            stopped.withLockedValue { $0 = true }
            reader.cancel()
        }
        let thread = Thread { [self] in
            watch(changed, until: { stopped.withLockedValue { $0 } })
            changed.finish()
        }
        thread.name = "manifest-watch"
        thread.start()
        return stream
    }

    private func watch(_ continuation: AsyncStream<TreeStamps>.Continuation, until stopped: () -> Bool) {
        var watcher: ManifestWatcher?
        do {
            if inotify { watcher = try ManifestWatcher() }
        } catch {
            loader.logger.warning("manifest directory polled instead of watched", metadata: ["directory": "\(directory)", "reason": "\(error)",
                                                                                          "poll": "\(pollInterval)"])
        }
        var stamps = scan(registeringWith: &watcher)
        var applied = stamps
        var lastScan = ContinuousClock.now
        continuation.yield(TreeStamps(files: stamps))
        while !stopped() {
            guard let active = watcher else {
                // Polling: a change is read once the tree is unchanged for one poll.
                sleep(pollInterval)
                let now = fingerprint()
                defer { stamps = now }
                guard now != applied, now == stamps else { continue }
                applied = now
                continuation.yield(TreeStamps(files: now))
                continue
            }
            var changes = active.changes(waitingMilliseconds: 100)
            if changes.isEmpty {
                guard ContinuousClock.now - lastScan >= resyncInterval else { continue }
                changes.rescan = true
            } else {
                // Read once the writers have paused for the quiet period (or after a second
                // of changes without a pause, so that a tree that never rests is still read).
                let first = ContinuousClock.now
                while ContinuousClock.now - first < .seconds(1) {
                    let more = active.changes(waitingMilliseconds: milliseconds(quietPeriod))
                    if more.isEmpty { break }
                    changes.merge(more)
                }
            }
            if changes.rescan || stamps == nil {
                stamps = scan(registeringWith: &watcher)
                lastScan = ContinuousClock.now
            } else {
                for path in changes.files { stamps?[path] = ManifestTree.stamp(path) }
            }
            guard stamps != applied else { continue }
            applied = stamps
            continuation.yield(TreeStamps(files: stamps))
        }
    }

    /// Walks the tree; the watcher watches every directory walked. If it cannot (the
    /// watch limit), it is dropped and the source polls from then on.
    private func scan(registeringWith watcher: inout ManifestWatcher?) -> [String: FileStamp]? {
        guard let active = watcher else { return fingerprint() }
        var directories: [String] = []
        guard let stamps = try? ManifestTree.scan(directory, directories: &directories) else { return nil }
        do {
            try active.watch(directories)
        } catch {
            loader.logger.warning("manifest directory polled instead of watched", metadata: ["directory": "\(directory)", "reason": "\(error)",
                                                                                          "poll": "\(pollInterval)"])
            watcher = nil
        }
        return stamps
    }

    /// Path, size, modification time and inode of every manifest file (nil when unreadable).
    func fingerprint() -> [String: FileStamp]? {
        try? ClusterManifestLoader.scan(directory)
    }

    private func milliseconds(_ duration: Duration) -> CInt {
        CInt(clamping: max(1, duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000))
    }

    private func sleep(_ duration: Duration) {
        var request = timespec(tv_sec: Int(duration.components.seconds), tv_nsec: Int(duration.components.attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
    }
}
