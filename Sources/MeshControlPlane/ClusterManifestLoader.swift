import Foundation
import Logging
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
    private let logger: Logger
    private let policyLoader: ManifestLoader

    public init(logger: Logger = Logger(label: "swift-mesh.controlplane.manifests")) {
        self.logger = logger
        self.policyLoader = ManifestLoader(logger: logger)
    }

    /// The YAML files of a directory tree, in path order. Hidden files and
    /// directories (such as a mounted ConfigMap's `..data`) are left out.
    public static func manifestFiles(in directory: String) throws(PolicyLoadError) -> [String] {
        let root = URL(fileURLWithPath: directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PolicyLoadError(file: directory, documentIndex: 0, fieldPath: "", kind: .io, message: "not a directory")
        }
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]) else {
            throw PolicyLoadError(file: directory, documentIndex: 0, fieldPath: "", kind: .io, message: "cannot list directory")
        }
        var files: [String] = []
        for case let url as URL in walker where url.pathExtension == "yaml" || url.pathExtension == "yml" {
            if (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true { files.append(url.path) }
        }
        return files.sorted()
    }

    /// Loads every manifest under `directory` and validates the result.
    public func load(directory: String) throws(PolicyLoadError) -> ClusterState {
        var sources: [(file: String, text: String)] = []
        for path in try Self.manifestFiles(in: directory) {
            do { sources.append((path, try String(contentsOfFile: path, encoding: .utf8))) } catch {
                throw PolicyLoadError(file: path, documentIndex: 0, fieldPath: "", kind: .io, message: "cannot read file: \(error.localizedDescription)")
            }
        }
        return try load(sources)
    }

    /// Loads YAML texts (`file` labels errors) and validates the result.
    public func load(_ sources: [(file: String, text: String)]) throws(PolicyLoadError) -> ClusterState {
        var reader = DocumentReader(policyLoader: policyLoader, logger: logger)
        for source in sources { try reader.read(yaml: source.text, file: source.file) }
        try reader.state.validate()
        return reader.state
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
        case "Node":
            let node = try decoder.node(apiVersion: apiVersion)
            try add(node, to: \.nodes, key: "Node//\(node.name)", doc)
        case "ServiceAccount":
            let account = try decoder.serviceAccount(apiVersion: apiVersion)
            try add(account, to: \.serviceAccounts, key: "ServiceAccount/\(account.namespace)/\(account.name)", doc)
        case "EndpointSlice":
            let slice = try decoder.endpointSlice(apiVersion: apiVersion)
            try add(slice, to: \.endpointSlices, key: "EndpointSlice/\(slice.namespace)/\(slice.name)", doc)
        case "PeerAuthentication":
            let policy = try decoder.peerAuthentication(apiVersion: apiVersion)
            try add(policy, to: \.peerAuthentications, key: "PeerAuthentication/\(policy.namespace)/\(policy.name)", doc)
        case "Gateway":
            let gateway = try decoder.gateway(apiVersion: apiVersion)
            try add(gateway, to: \.gateways, key: "Gateway/\(gateway.namespace)/\(gateway.name)", doc)
        case "HTTPRoute":
            let route = try decoder.httpRoute(apiVersion: apiVersion)
            try add(route, to: \.httpRoutes, key: "HTTPRoute/\(route.namespace)/\(route.name)", doc)
        default:
            top.markAllConsumed()
            let name = (try? top.optional("metadata")?.mapping().optional("name")?.string()) ?? "?"
            state.skipped.append("\(doc.file)#\(doc.document) \(kind) \(name)")
            if warnedKinds.insert(kind).inserted {
                logger.warning("skipping documents of a kind the control plane does not read", metadata: ["kind": "\(kind)", "first": "\(doc.file)#\(doc.document)"])
            }
        }
    }

    /// Appends `object` unless an object with the same `kind/namespace/name` key was read already.
    private mutating func add<Object>(_ object: Object, to list: WritableKeyPath<ClusterState, [Object]>, key: String, _ doc: YAMLCursor) throws(PolicyLoadError) {
        guard existing.insert(key).inserted else {
            throw doc.error(.duplicate, "\(key) is defined twice", at: doc.path.isEmpty ? "metadata.name" : doc.path + ".metadata.name")
        }
        state[keyPath: list].append(object)
    }
}
