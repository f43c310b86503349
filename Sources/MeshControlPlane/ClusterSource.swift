import Foundation
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
/// removed or modified (polled by path, size and modification time; an edit
/// is picked up once the file has been quiet for one poll, so a half-written
/// file is not read).
public struct DirectoryClusterSource: ClusterSource {
    public let directory: String
    public let pollInterval: Duration
    public let loader: ClusterManifestLoader
    /// Decoded files, reused while unchanged: a reload reads only what changed.
    private let cache = ManifestCache()

    public init(directory: String, pollInterval: Duration = .milliseconds(200), loader: ClusterManifestLoader = ClusterManifestLoader()) {
        self.directory = directory
        self.pollInterval = pollInterval
        self.loader = loader
    }

    /// Reads the directory now (only the files that changed since the last read are decoded).
    public func load() -> ClusterSourceEvent {
        do { return .loaded(try loader.load(directory: directory, cache: cache)) } catch { return .refused(error) }
    }

    /// Reads the files of a scan just made.
    private func load(_ stamps: [String: FileStamp]) -> ClusterSourceEvent {
        do { return .loaded(try loader.load(directory: directory, stamps: stamps, cache: cache)) } catch { return .refused(error) }
    }

    public func events() -> AsyncStream<ClusterSourceEvent> {
        let (stream, continuation) = AsyncStream<ClusterSourceEvent>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let task = Task {
            var applied = fingerprint()
            continuation.yield(load())
            var seen = applied
            while !Task.isCancelled {
                try? await Task.sleep(for: pollInterval)
                let now = fingerprint()
                defer { seen = now }
                // Changed since the last read, and unchanged since the last poll.
                guard now != applied, now == seen else { continue }
                applied = now
                continuation.yield(now.map(load) ?? load())
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Path, size, modification time and inode of every manifest file (nil when unreadable).
    func fingerprint() -> [String: FileStamp]? {
        try? ClusterManifestLoader.scan(directory)
    }
}
