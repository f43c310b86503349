import Foundation
@testable import MeshControlPlane
import MeshTestSupport
import Synchronization
import Testing

/// What a DirectoryClusterSource yielded so far.
private final class Received: Sendable {
    private let events = Mutex<[ClusterSourceEvent]>([])

    func append(_ event: ClusterSourceEvent) { events.withLock { $0.append(event) } }
    var count: Int { events.withLock { $0.count } }

    /// The pods (name → labels) of the last event, if it was a loaded state.
    var lastPods: [String: [String: String]]? {
        events.withLock { events in
            guard case .loaded(let state)? = events.last else { return nil }
            return Dictionary(uniqueKeysWithValues: state.pods.map { ($0.name, $0.labels) })
        }
    }
}

@Suite("Manifest directory watching (inotify, and polling where it is off)", .serialized)
struct ManifestWatchTests {
    /// Runs `body` while `source`'s events are collected.
    private func watching(_ source: DirectoryClusterSource, _ body: (Received) async throws -> Void) async throws {
        let received = Received()
        let stream = source.events()
        let consumer = Task { for await event in stream { received.append(event) } }
        defer { consumer.cancel() }
        #expect(await eventually(bound: 10) { received.count == 1 }, "the first read")
        try await body(received)
    }

    private func write(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    @Test("inotify: a file in a directory made after the watch began is seen when added, edited and removed; an idle tree yields nothing")
    func newDirectory() async throws {
        let dir = try Manifests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // No resync within the test: every change must come from inotify.
        let source = DirectoryClusterSource(directory: dir.path, pollInterval: .seconds(3600), resyncInterval: .seconds(3600))
        try await watching(source) { received in
            #expect(received.lastPods?["echo-1"] != nil)
            let file = dir.appendingPathComponent("team/extra/pods.yaml")
            try write(Manifests.pod("echo-9", node: "node-b"), to: file)
            #expect(await eventually(bound: 10) { received.lastPods?["echo-9"] != nil }, "a pod in a new directory")

            // Seen only if the new directory is watched too.
            try write(Manifests.pod("echo-9", node: "node-b", labels: ["app": "echo", "version": "v9"]), to: file)
            #expect(await eventually(bound: 10) { received.lastPods?["echo-9"]?["version"] == "v9" }, "an edit in the new directory")

            try FileManager.default.removeItem(at: file)
            #expect(await eventually(bound: 10) { received.lastPods.map { $0["echo-9"] == nil } == true }, "the removal")

            // Nothing changes: nothing is yielded (no event from a walk or a timer).
            let settled = received.count
            try await Task.sleep(for: .milliseconds(600))
            #expect(received.count == settled)

            // A file that is no manifest changes nothing either.
            try "notes".write(to: dir.appendingPathComponent("README.txt"), atomically: true, encoding: .utf8)
            try await Task.sleep(for: .milliseconds(300))
            #expect(received.count == settled)
        }
    }

    @Test("inotify: a hidden temporary file renamed into place names the file and walks nothing; a hidden link asks for a walk")
    func hiddenEntries() throws {
        let dir = try Manifests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let watcher = try ManifestWatcher()
        try watcher.watch([dir.path])
        func drain() -> ManifestWatcher.Changes {
            var changes = watcher.changes(waitingMilliseconds: 2000)
            while true {
                let more = watcher.changes(waitingMilliseconds: 100)
                if more.isEmpty { return changes }
                changes.merge(more)
            }
        }
        // Whatever the set-up's writes still have queued is not this test's business.
        while !watcher.changes(waitingMilliseconds: 200).isEmpty {}
        // An atomic write as editors and tools make it: a hidden file, written, then renamed.
        let temporary = dir.appendingPathComponent(".more.yaml.tmp-1234")
        try Manifests.pod("echo-9", node: "node-a").write(to: temporary, atomically: false, encoding: .utf8)
        #expect(rename(temporary.path, dir.appendingPathComponent("more.yaml").path) == 0)
        let written = drain()
        #expect(written.files == [dir.appendingPathComponent("more.yaml").path] && !written.rescan, "\(written)")
        // A hidden link swapped (a ConfigMap's `..data`): what the visible names lead to may have changed.
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("..data_tmp").path, withDestinationPath: ".")
        #expect(rename(dir.appendingPathComponent("..data_tmp").path, dir.appendingPathComponent("..data").path) == 0)
        #expect(drain().rescan)
    }

    @Test("inotify: a mounted ConfigMap's `..data` link swapped to a new revision is seen")
    func configMapSwap() async throws {
        // The layout kubelet gives a ConfigMap volume: visible links into `..data`, itself a link
        // to a hidden timestamped directory that an update replaces with one rename.
        let dir = try Manifests.directory([("cluster.yaml", Manifests.cluster)])
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = FileManager.default
        try write(Manifests.pod("echo-1", node: "node-a"), to: dir.appendingPathComponent("..2026_01/pods.yaml"))
        try files.createSymbolicLink(atPath: dir.appendingPathComponent("..data").path, withDestinationPath: "..2026_01")
        try files.createSymbolicLink(atPath: dir.appendingPathComponent("pods.yaml").path, withDestinationPath: "..data/pods.yaml")

        let source = DirectoryClusterSource(directory: dir.path, pollInterval: .seconds(3600), resyncInterval: .seconds(3600))
        try await watching(source) { received in
            #expect(received.lastPods.map { Set($0.keys) } == ["echo-1"])
            try write(Manifests.pod("echo-2", node: "node-a"), to: dir.appendingPathComponent("..2026_02/pods.yaml"))
            try files.createSymbolicLink(atPath: dir.appendingPathComponent("..data_tmp").path, withDestinationPath: "..2026_02")
            #expect(rename(dir.appendingPathComponent("..data_tmp").path, dir.appendingPathComponent("..data").path) == 0)
            #expect(await eventually(bound: 10) { received.lastPods.map { Set($0.keys) } == ["echo-2"] }, "the new revision")
        }
    }

    @Test("polling (inotify off): an added file is read once it is quiet for one poll")
    func polling() async throws {
        let dir = try Manifests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = DirectoryClusterSource(directory: dir.path, pollInterval: .milliseconds(50), inotify: false)
        try await watching(source) { received in
            try write(Manifests.pod("echo-9", node: "node-b"), to: dir.appendingPathComponent("added.yaml"))
            #expect(await eventually(bound: 10) { received.lastPods?["echo-9"] != nil })
        }
    }
}
