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
    public func load(directory: String, stamps: [String: FileStamp], cache: ManifestCache? = nil) throws(PolicyLoadError) -> ClusterState {
        let cache = cache ?? ManifestCache()
        var fragments: [(file: String, objects: FileObjects)] = []
        for path in stamps.keys.sorted() {
            let stamp = stamps[path]!
            if let cached = cache.objects(path: path, stamp: stamp) {
                fragments.append((path, cached))
                continue
            }
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw PolicyLoadError(file: path, documentIndex: 0, fieldPath: "", kind: .io, message: "cannot read file: \(error.localizedDescription)")
            }
            let objects = try decode(yaml: text, file: path)
            cache.store(objects, path: path, stamp: stamp)
            fragments.append((path, objects))
        }
        cache.retain(Set(stamps.keys))
        return try Self.merge(fragments)
    }

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
        var state = ClusterState()
        var owners: [String: String] = [:]
        for (file, objects) in fragments {
            for key in objects.keys {
                if let other = owners.updateValue(file, forKey: key) {
                    let origin = objects.state.origin(ofKey: key) ?? ObjectOrigin(file: file, document: 0)
                    throw origin.error(.duplicate, "\(key) is also defined in \(other)", field: "metadata.name")
                }
            }
            state.append(objects.state)
        }
        try state.validate()
        return state
    }
}

/// The objects decoded from one file, and their `kind/namespace/name` keys.
struct FileObjects: Sendable {
    let state: ClusterState
    let keys: Set<String>
}

/// Decoded files by path, reused while a file's size and modification time
/// are unchanged (``DirectoryClusterSource`` keeps one across reloads).
public final class ManifestCache: Sendable {
    private let entries = NIOLockedValueBox<[String: (stamp: FileStamp, objects: FileObjects)]>([:])
    private let decoded = NIOLockedValueBox(0)

    public init() {}

    /// How many files were decoded and stored so far (the others were reused).
    public var decodedFiles: Int { decoded.withLockedValue { $0 } }

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
