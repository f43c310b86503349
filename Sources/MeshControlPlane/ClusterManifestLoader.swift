import Foundation
import Logging
import NIOConcurrencyHelpers
import PolicyEngine
import Yams

/// Reads a directory tree of Kubernetes YAML (multi-document files, `List`
/// wrappers, any layout) into one validated ``ClusterState``.
///
/// Loading is all or nothing: the first invalid document, duplicate object or
/// cross-object conflict throws a ``PolicyLoadError`` that names the file, the
/// document and the field path, and nothing is returned. Kinds the control
/// plane does not read are skipped with one warning each.
public struct ClusterManifestLoader: Sendable {
    let logger: Logger
    private let policyLoader: ManifestLoader

    public init(logger: Logger = Logger(label: "swift-mesh.controlplane.manifests")) {
        self.logger = logger
        self.policyLoader = ManifestLoader(logger: logger)
    }

    /// The YAML files of a directory tree with their sizes and modification
    /// times. Hidden files and directories (such as a mounted ConfigMap's
    /// `..data`) are left out; symbolic links to files are followed.
    public static func scan(_ directory: String) throws(PolicyLoadError) -> [String: FileStamp] {
        do { return try ManifestTree.scan(directory) } catch {
            throw PolicyLoadError(file: directory, documentIndex: 0, fieldPath: "", kind: .io, message: error.message)
        }
    }

    /// The YAML files of a directory tree, in path order.
    public static func manifestFiles(in directory: String) throws(PolicyLoadError) -> [String] {
        try scan(directory).keys.sorted()
    }

    /// Loads every manifest under `directory` and validates the result. With a
    /// `cache`, only files whose size or modification time changed since the
    /// cache saw them are read and decoded again.
    public func load(directory: String, cache: ManifestCache? = nil) throws(PolicyLoadError) -> ClusterState {
        try load(directory: directory, stamps: try Self.scan(directory), cache: cache)
    }

    /// Loads the files `stamps` lists (from ``scan(_:)`` of `directory`), reusing `cache`.
    ///
    /// When the files that changed since the cache's last load held only pods,
    /// before and after, the result is that load's state with those pods
    /// replaced and checked (``MergedTree``); otherwise every file's objects are
    /// merged and validated again.
    public func load(directory: String, stamps: [String: FileStamp], cache: ManifestCache? = nil) throws(PolicyLoadError) -> ClusterState {
        let cache = cache ?? ManifestCache()
        if let merged = cache.lastMerge, let state = try patch(merged, stamps: stamps, cache: cache) { return state }
        var fragments: [(file: String, objects: FileObjects)] = []
        for path in stamps.keys.sorted() { fragments.append((path, try read(path, stamp: stamps[path]!, cache: cache))) }
        cache.retain(Set(stamps.keys))
        let merged = try Self.mergeTree(fragments, stamps: stamps)
        cache.lastMerge = merged
        return merged.state
    }

    /// The objects of one file: the cache's while its stamp is unchanged, else read and decoded (and cached).
    private func read(_ path: String, stamp: FileStamp, cache: ManifestCache) throws(PolicyLoadError) -> FileObjects {
        if let cached = cache.objects(path: path, stamp: stamp) { return cached }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw PolicyLoadError(file: path, documentIndex: 0, fieldPath: "", kind: .io, message: "cannot read file: \(error.localizedDescription)")
        }
        let objects = try decode(yaml: text, file: path)
        cache.store(objects, path: path, stamp: stamp)
        return objects
    }

    /// `merged` with the pods of the changed files replaced, when those files
    /// held only pods before and after (at most `patchLimit` of them); nil
    /// when a full merge is needed.
    private func patch(_ merged: MergedTree, stamps: [String: FileStamp], cache: ManifestCache) throws(PolicyLoadError) -> ClusterState? {
        var changed: [String] = []
        for (path, stamp) in stamps where merged.stamps[path] != stamp {
            changed.append(path)
            if changed.count > Self.patchLimit { return nil }
        }
        for path in merged.stamps.keys where stamps[path] == nil { changed.append(path) }
        guard changed.count <= Self.patchLimit else { return nil }
        guard !changed.isEmpty else { return merged.state }
        changed.sort()
        var replacements: [String: FileObjects] = [:]
        for path in changed {
            if let stamp = stamps[path] { replacements[path] = try read(path, stamp: stamp, cache: cache) }
            guard merged.files[path]?.podsOnly ?? true, replacements[path]?.podsOnly ?? true else { return nil }
        }
        var next = merged
        var gone = Set<String>()
        for path in changed {
            guard let old = merged.files[path] else { continue }
            for key in old.keys where next.owners[key] == path { next.owners[key] = nil }
            for pod in old.state.pods {
                gone.insert(pod.key)
                next.pods.release(pod)
            }
        }
        let touched = Set(changed)
        next.state.pods.removeAll { touched.contains($0.origin.file) }
        next.state.policies.workloads.removeAll { gone.contains("\($0.namespace)/\($0.name)") }
        for path in changed {
            next.files[path] = replacements[path]
            guard let objects = replacements[path] else { continue }
            for key in objects.keys {
                if let other = next.owners.updateValue(path, forKey: key) { throw Self.duplicate(key, in: objects, file: path, other: other) }
            }
            for pod in objects.state.pods { try next.pods.check(pod) }
            next.state.pods += objects.state.pods
            next.state.policies.workloads += objects.state.policies.workloads
        }
        next.stamps = stamps
        cache.forget(changed.filter { stamps[$0] == nil })
        cache.lastMerge = next
        cache.countPatch()
        return next.state
    }

    /// How many changed files a reload patches into the last state at most (more: a full merge).
    static let patchLimit = 64

    /// Loads YAML texts (`file` labels errors) and validates the result.
    public func load(_ sources: [(file: String, text: String)]) throws(PolicyLoadError) -> ClusterState {
        var fragments: [(file: String, objects: FileObjects)] = []
        for source in sources { fragments.append((source.file, try decode(yaml: source.text, file: source.file))) }
        return try Self.merge(fragments)
    }

    func decode(yaml: String, file: String) throws(PolicyLoadError) -> FileObjects {
        var reader = DocumentReader(policyLoader: policyLoader, logger: logger)
        try reader.read(yaml: yaml, file: file)
        return FileObjects(state: reader.state, keys: reader.existing)
    }

    /// Joins the files' objects in order, refusing an object defined in two files, and validates the whole.
    static func merge(_ fragments: [(file: String, objects: FileObjects)]) throws(PolicyLoadError) -> ClusterState {
        try mergeTree(fragments, stamps: [:]).state
    }

    /// ``merge(_:)``, keeping what a later patch needs.
    static func mergeTree(_ fragments: [(file: String, objects: FileObjects)], stamps: [String: FileStamp]) throws(PolicyLoadError) -> MergedTree {
        var state = ClusterState()
        var owners: [String: String] = [:]
        for (file, objects) in fragments {
            for key in objects.keys {
                if let other = owners.updateValue(file, forKey: key) { throw duplicate(key, in: objects, file: file, other: other) }
            }
            state.append(objects.state)
        }
        let pods = try state.validated()
        return MergedTree(stamps: stamps, files: Dictionary(fragments, uniquingKeysWith: { _, last in last }), state: state, owners: owners, pods: pods)
    }

    private static func duplicate(_ key: String, in objects: FileObjects, file: String, other: String) -> PolicyLoadError {
        let origin = objects.state.origin(ofKey: key) ?? ObjectOrigin(file: file, document: 0)
        return origin.error(.duplicate, "\(key) is also defined in \(other)", field: "metadata.name")
    }
}

/// The result of one load of a tree, with what lets the next load replace the
/// pods of a few changed files instead of merging every file again.
struct MergedTree: Sendable {
    /// The files read, and what each held.
    var stamps: [String: FileStamp]
    var files: [String: FileObjects]
    /// The merged, validated state.
    var state: ClusterState
    /// File defining each object key.
    var owners: [String: String]
    /// The pod checks' state over `state.pods`.
    var pods: PodChecker
}

/// The objects decoded from one file, and their `kind/namespace/name` keys.
/// A class: tables of ten thousand files are copied from one load to the next.
final class FileObjects: Sendable {
    let state: ClusterState
    let keys: Set<String>
    /// Whether the file defines pods and nothing else.
    let podsOnly: Bool

    init(state: ClusterState, keys: Set<String>) {
        self.state = state
        self.keys = keys
        podsOnly = state.skipped.isEmpty && state.policies.skipped.isEmpty && keys.allSatisfy { $0.hasPrefix("Pod/") }
    }
}

/// Decoded files by path, reused while a file's size and modification time
/// are unchanged (``DirectoryClusterSource`` keeps one across reloads).
public final class ManifestCache: Sendable {
    private let entries = NIOLockedValueBox<[String: (stamp: FileStamp, objects: FileObjects)]>([:])
    private let decoded = NIOLockedValueBox(0)
    private let merged = NIOLockedValueBox<MergedTree?>(nil)
    private let patched = NIOLockedValueBox(0)

    public init() {}

    /// How many files were decoded and stored so far (the others were reused).
    public var decodedFiles: Int { decoded.withLockedValue { $0 } }

    /// How many loads replaced the pods of a few changed files in the last state
    /// instead of merging every file again.
    public var patchedLoads: Int { patched.withLockedValue { $0 } }

    func objects(path: String, stamp: FileStamp) -> FileObjects? {
        entries.withLockedValue { entries in entries[path].flatMap { $0.stamp == stamp ? $0.objects : nil } }
    }

    func store(_ objects: FileObjects, path: String, stamp: FileStamp) {
        entries.withLockedValue { $0[path] = (stamp, objects) }
        decoded.withLockedValue { $0 += 1 }
    }

    /// Forgets files that are gone.
    func retain(_ paths: Set<String>) {
        entries.withLockedValue { entries in entries = entries.filter { paths.contains($0.key) } }
    }

    /// Forgets the files at `paths`.
    func forget(_ paths: [String]) {
        entries.withLockedValue { entries in for path in paths { entries[path] = nil } }
    }

    func countPatch() { patched.withLockedValue { $0 += 1 } }

    /// The last load's merged state.
    var lastMerge: MergedTree? {
        get { merged.withLockedValue { $0 } }
        set { merged.withLockedValue { $0 = newValue } }
    }
}

/// Accumulates the objects of many documents, refusing duplicates.
private struct DocumentReader {
    let policyLoader: ManifestLoader
    let logger: Logger
    var state = ClusterState()
    var existing = Set<String>()
    var warnedKinds = Set<String>()

    init(policyLoader: ManifestLoader, logger: Logger) {
        self.policyLoader = policyLoader
        self.logger = logger
    }

    mutating func read(yaml: String, file: String) throws(PolicyLoadError) {
        let parser: Parser
        do { parser = try Parser(yaml: yaml) } catch {
            throw PolicyLoadError(file: file, documentIndex: 0, fieldPath: "", kind: .syntax, message: "\(error)")
        }
        var index = 0
        while true {
            let node: Node?
            do { node = try parser.nextRoot() } catch {
                throw PolicyLoadError(file: file, documentIndex: index, fieldPath: "", kind: .syntax, message: "\(error)")
            }
            guard let node else { break }
            let cursor = YAMLCursor(node: node, file: file, document: index)
            if !cursor.isNull { try decode(cursor) }
            index += 1
        }
    }

    private mutating func decode(_ doc: YAMLCursor) throws(PolicyLoadError) {
        let top = try doc.mapping()
        let apiVersion = try top.required("apiVersion").string()
        let kind = try top.required("kind").string()
        if kind.hasSuffix("List") {
            for item in try top.required("items").sequence() { try decode(item) }
            return
        }
        let origin = ObjectOrigin(file: doc.file, document: doc.document, path: doc.path)
        if ManifestLoader.kinds.contains(kind) {
            try policyLoader.decodeDocument(doc, into: &state.policies, existing: &existing)
        }
        let decoder = ObjectDecoder(top: top, origin: origin, at: doc)
        switch kind {
        case "Pod":
            state.pods.append(try decoder.pod(apiVersion: apiVersion))
        case "Service":
            state.services.append(try decoder.service(apiVersion: apiVersion))
        case "Namespace", "AuthorizationPolicy", "NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy":
            break
        case "Node": try add(try decoder.node(apiVersion: apiVersion), to: \.nodes, doc)
        case "ServiceAccount": try add(try decoder.serviceAccount(apiVersion: apiVersion), to: \.serviceAccounts, doc)
        case "EndpointSlice": try add(try decoder.endpointSlice(apiVersion: apiVersion), to: \.endpointSlices, doc)
        case "PeerAuthentication": try add(try decoder.peerAuthentication(apiVersion: apiVersion), to: \.peerAuthentications, doc)
        case "Gateway": try add(try decoder.gateway(apiVersion: apiVersion), to: \.gateways, doc)
        case "HTTPRoute": try add(try decoder.httpRoute(apiVersion: apiVersion), to: \.httpRoutes, doc)
        default:
            top.markAllConsumed()
            let name = (try? top.optional("metadata")?.mapping().optional("name")?.string()) ?? "?"
            state.skipped.append("\(doc.file)#\(doc.document) \(kind) \(name)")
            if warnedKinds.insert(kind).inserted {
                logger.warning("skipping documents of a kind the control plane does not read", metadata: ["kind": "\(kind)", "first": "\(doc.file)#\(doc.document)"])
            }
        }
    }

    /// Appends `object` unless an object with the same `Kind/namespace/name` key was read already.
    private mutating func add<Object: ClusterObject>(_ object: Object, to list: WritableKeyPath<ClusterState, [Object]>, _ doc: YAMLCursor) throws(PolicyLoadError) {
        guard existing.insert(object.objectKey).inserted else {
            throw doc.error(.duplicate, "\(object.objectKey) is defined twice", at: doc.path.isEmpty ? "metadata.name" : doc.path + ".metadata.name")
        }
        state[keyPath: list].append(object)
    }
}
