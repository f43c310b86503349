import Foundation
import Logging
import Yams

/// Loads multi-document Kubernetes YAML into a ``PolicyBundle``.
///
/// Loading is all-or-nothing: if any document of a file (or, for
/// `load(directory:)`, of any file) is invalid, a ``PolicyLoadError`` names it
/// and nothing is returned. Policy documents are read strictly: an unknown
/// field is an error. Pods, Services and Namespaces are read leniently: only
/// the fields policy needs are used and others are ignored. Documents of
/// other kinds are listed in ``PolicyBundle/skipped``.
public struct ManifestLoader: Sendable {
    private let logger: Logger

    public init(logger: Logger = Logger(label: "swift-mesh.policy.loader")) {
        self.logger = logger
    }

    /// Parses YAML text; `file` labels errors.
    public func load(yaml: String, file: String = "<input>") throws(PolicyLoadError) -> PolicyBundle {
        var bundle = PolicyBundle()
        let parser: Parser
        do { parser = try Parser(yaml: yaml) } catch {
            throw PolicyLoadError(file: file, documentIndex: 0, fieldPath: "", kind: .syntax, message: "\(error)")
        }
        var index = 0
        var existing = Set<String>()
        while true {
            let node: Node?
            do { node = try parser.nextRoot() } catch {
                throw PolicyLoadError(file: file, documentIndex: index, fieldPath: "", kind: .syntax, message: "\(error)")
            }
            guard let node else { break }
            let cursor = YAMLCursor(node: node, path: "", file: file, document: index)
            if !cursor.isNull {
                try decodeDocument(cursor, into: &bundle, existing: &existing)
            }
            index += 1
        }
        return bundle
    }

    /// Loads one file.
    public func load(file path: String) throws(PolicyLoadError) -> PolicyBundle {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw PolicyLoadError(file: path, documentIndex: 0, fieldPath: "", kind: .io, message: "cannot read file: \(error.localizedDescription)")
        }
        return try load(yaml: text, file: path)
    }

    /// Loads every `.yaml`/`.yml` file of a directory (not recursive), in name order.
    public func load(directory path: String) throws(PolicyLoadError) -> PolicyBundle {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
            throw PolicyLoadError(file: path, documentIndex: 0, fieldPath: "", kind: .io, message: "cannot read directory: \(error.localizedDescription)")
        }
        var bundle = PolicyBundle()
        for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
            let filePath = (path as NSString).appendingPathComponent(name)
            let part = try load(file: filePath)
            let clash = bundle.objectKeys.intersection(part.objectKeys)
            if let first = clash.sorted().first {
                throw PolicyLoadError(file: filePath, documentIndex: 0, fieldPath: "", kind: .duplicate,
                                      message: "\(first) is also defined in another file")
            }
            bundle.merge(part)
        }
        return bundle
    }

    /// The kinds ``decodeDocument(_:into:existing:)`` reads (other kinds are skipped with a warning).
    package static let kinds: Set<String> = [
        "AuthorizationPolicy", "NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "Namespace", "Pod", "Service",
    ]

    /// Decodes one document into `bundle`; `existing` holds the `kind/namespace/name`
    /// keys seen so far and refuses a second object of the same key.
    package func decodeDocument(_ doc: YAMLCursor, into bundle: inout PolicyBundle, existing: inout Set<String>) throws(PolicyLoadError) {
        let top = try doc.mapping()
        let apiVersion = try top.required("apiVersion").string()
        let kind = try top.required("kind").string()
        // `kubectl get ... -o yaml` wraps objects in a v1 List.
        if kind == "List" || kind.hasSuffix("List") {
            top.ignore("metadata")
            for item in try top.required("items").sequence() {
                try decodeDocument(item, into: &bundle, existing: &existing)
            }
            try top.finish()
            return
        }
        let policyKinds: Set<String> = ["AuthorizationPolicy", "NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"]
        let meta = try ObjectMeta.decode(try top.required("metadata"), strict: policyKinds.contains(kind))
        let namespace = meta.namespace ?? "default"
        let metaPath = doc.path.isEmpty ? "metadata.name" : doc.path + ".metadata.name"
        func checkUnique(_ key: String) throws(PolicyLoadError) {
            if existing.contains(key) {
                throw doc.error(.duplicate, "\(key) is defined twice in this file", at: metaPath)
            }
            existing.insert(key)
        }
        func requireVersion(_ allowed: [String]) throws(PolicyLoadError) {
            guard allowed.contains(apiVersion) else {
                throw doc.error(.invalidValue, "apiVersion '\(apiVersion)' is not supported for \(kind) (expected \(allowed.joined(separator: " or ")))",
                            at: doc.path.isEmpty ? "apiVersion" : doc.path + ".apiVersion")
            }
        }
        switch kind {
        case "AuthorizationPolicy":
            try requireVersion(["security.istio.io/v1", "security.istio.io/v1beta1"])
            try checkUnique("AuthorizationPolicy/\(namespace)/\(meta.name)")
            top.ignore("status")
            let spec = top.optional("spec")
            var policy = try IstioDecoder.decode(spec, namespace: namespace, name: meta.name)
            policy.dryRun = meta.annotations["istio.io/dry-run"] == "true"
            bundle.authorizationPolicies.append(policy)
        case "NetworkPolicy":
            try requireVersion(["networking.k8s.io/v1"])
            try checkUnique("NetworkPolicy/\(namespace)/\(meta.name)")
            top.ignore("status")
            bundle.networkPolicies.append(try KubernetesDecoder.networkPolicy(try top.required("spec"), namespace: namespace, name: meta.name))
        case "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy":
            try requireVersion(["cilium.io/v2"])
            let ns = kind == "CiliumNetworkPolicy" ? namespace : ""
            try checkUnique("\(kind)/\(ns)/\(meta.name)")
            top.ignore("status")
            try top.rejectUnsupported("specs", reason: "use one policy per rule list ('spec')")
            bundle.ciliumPolicies.append(try CiliumDecoder.decode(try top.required("spec"), namespace: ns, name: meta.name))
        case "Namespace":
            try requireVersion(["v1"])
            try checkUnique("Namespace//\(meta.name)")
            top.markAllConsumed()
            bundle.namespaces.append(Namespace(name: meta.name, labels: meta.labels))
        case "Pod":
            try requireVersion(["v1"])
            try checkUnique("Pod/\(namespace)/\(meta.name)")
            top.markAllConsumed()
            bundle.workloads.append(try KubernetesDecoder.pod(top, namespace: namespace, meta: meta))
        case "Service":
            try requireVersion(["v1"])
            try checkUnique("Service/\(namespace)/\(meta.name)")
            top.markAllConsumed()
            let spec = try top.optional("spec")?.mapping()
            spec?.markAllConsumed()
            let selector = try spec?.optional("selector")?.stringMap() ?? [:]
            bundle.services.append(Service(namespace: namespace, name: meta.name, selector: selector))
        default:
            top.markAllConsumed()
            let entry = "\(doc.file)#\(doc.document) \(kind) \(meta.name)"
            logger.warning("skipping document of unsupported kind", metadata: ["document": "\(entry)"])
            bundle.skipped.append(entry)
        }
        try top.finish()
    }
}

/// The `metadata` fields the engine reads; other standard fields are accepted and ignored.
package struct ObjectMeta {
    package var name: String
    package var namespace: String?
    package var labels: Labels
    package var annotations: [String: String]

    static let ignored = ["uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                          "finalizers", "ownerReferences", "generateName", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"]

    /// Policies reject unknown metadata fields; inventory objects (Pods,
    /// Namespaces, Services as `kubectl get -o yaml` prints them) ignore them.
    package static func decode(_ c: YAMLCursor, strict: Bool) throws(PolicyLoadError) -> ObjectMeta {
        let m = try c.mapping()
        let name = try m.required("name").string()
        guard !name.isEmpty else { throw c.error(.invalidValue, "name must not be empty", at: c.path + ".name") }
        let ns = try m.optional("namespace")?.string()
        let labels = try m.optional("labels")?.stringMap() ?? [:]
        let annotations = try m.optional("annotations")?.stringMap() ?? [:]
        for k in ignored { m.ignore(k) }
        if strict { try m.finish() }
        return ObjectMeta(name: name, namespace: ns, labels: labels, annotations: annotations)
    }
}
