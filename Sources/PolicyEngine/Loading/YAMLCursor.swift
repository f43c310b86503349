import Yams

/// A position inside one YAML document with strict, path-tracking accessors.
///
/// Reading a mapping through a cursor records which keys were consumed;
/// `finish()` reports the first key nobody asked for as an unknown field.
struct YAMLCursor {
    let node: Yams.Node
    let path: String
    let file: String
    let document: Int

    func error(_ kind: PolicyLoadError.Kind, _ message: String, at sub: String? = nil) -> PolicyLoadError {
        PolicyLoadError(file: file, documentIndex: document, fieldPath: sub ?? path, kind: kind, message: message)
    }

    func child(_ node: Yams.Node, _ component: String) -> YAMLCursor {
        YAMLCursor(node: node, path: path.isEmpty ? component : path + "." + component, file: file, document: document)
    }

    func element(_ node: Yams.Node, _ index: Int) -> YAMLCursor {
        YAMLCursor(node: node, path: path + "[\(index)]", file: file, document: document)
    }

    var isNull: Bool {
        if case .scalar(let s) = node { return s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string) }
        return false
    }

    /// Opens this node as a mapping.
    func mapping() throws(PolicyLoadError) -> YAMLMapping {
        guard case .mapping(let m) = node else {
            if isNull { return YAMLMapping(cursor: self, entries: []) }
            throw error(.wrongType, "expected a mapping")
        }
        var entries: [(String, Yams.Node)] = []
        for (k, v) in m {
            guard case .scalar(let ks) = k else { throw error(.wrongType, "mapping keys must be strings") }
            if entries.contains(where: { $0.0 == ks.string }) {
                throw error(.duplicate, "key '\(ks.string)' appears twice", at: path.isEmpty ? ks.string : path + "." + ks.string)
            }
            entries.append((ks.string, v))
        }
        return YAMLMapping(cursor: self, entries: entries)
    }

    func sequence() throws(PolicyLoadError) -> [YAMLCursor] {
        if isNull { return [] }
        guard case .sequence(let s) = node else { throw error(.wrongType, "expected a list") }
        return s.enumerated().map { element($0.element, $0.offset) }
    }

    func string() throws(PolicyLoadError) -> String {
        guard case .scalar(let s) = node else { throw error(.wrongType, "expected a string") }
        return s.string
    }

    func int() throws(PolicyLoadError) -> Int {
        guard case .scalar(let s) = node, let v = Int(s.string) else { throw error(.wrongType, "expected an integer") }
        return v
    }

    func bool() throws(PolicyLoadError) -> Bool {
        guard case .scalar(let s) = node else { throw error(.wrongType, "expected a boolean") }
        switch s.string {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: throw error(.wrongType, "expected a boolean, found '\(s.string)'")
        }
    }

    /// A scalar that may be written as a number or a string (Kubernetes IntOrString).
    func intOrString() throws(PolicyLoadError) -> IntOrString {
        guard case .scalar(let s) = node else { throw error(.wrongType, "expected a number or a string") }
        if s.style == .plain, let v = Int(s.string) { return .int(v) }
        return .string(s.string)
    }

    func stringList() throws(PolicyLoadError) -> [String] {
        try sequence().map { c throws(PolicyLoadError) in try c.string() }
    }

    func stringMap() throws(PolicyLoadError) -> [String: String] {
        let m = try mapping()
        var out: [String: String] = [:]
        for (k, v) in m.entries {
            out[k] = try m.cursor.child(v, k).string()
        }
        m.markAllConsumed()
        return out
    }
}

/// A Kubernetes `IntOrString` value.
enum IntOrString: Equatable {
    case int(Int)
    case string(String)
}

/// A mapping being read field by field; unknown keys are reported by `finish()`.
final class YAMLMapping {
    let cursor: YAMLCursor
    let entries: [(String, Yams.Node)]
    private var consumed: Set<String> = []
    private var allConsumed = false

    init(cursor: YAMLCursor, entries: [(String, Yams.Node)]) {
        self.cursor = cursor
        self.entries = entries
    }

    var keys: [String] { entries.map(\.0) }

    func markAllConsumed() { allConsumed = true }

    func has(_ key: String) -> Bool { entries.contains { $0.0 == key } }

    /// The field, or nil if absent or explicitly null.
    func optional(_ key: String) -> YAMLCursor? {
        consumed.insert(key)
        guard let n = entries.first(where: { $0.0 == key })?.1 else { return nil }
        let c = cursor.child(n, key)
        return c.isNull ? nil : c
    }

    func required(_ key: String) throws(PolicyLoadError) -> YAMLCursor {
        guard let c = optional(key) else {
            throw cursor.error(.missingField, "required field '\(key)' is missing", at: cursor.path.isEmpty ? key : cursor.path + "." + key)
        }
        return c
    }

    func ignore(_ keys: String...) { consumed.formUnion(keys) }

    /// Rejects keys that were never read.
    func finish() throws(PolicyLoadError) {
        if allConsumed { return }
        for (k, _) in entries where !consumed.contains(k) {
            throw cursor.error(.unknownField, "unknown field '\(k)'", at: cursor.path.isEmpty ? k : cursor.path + "." + k)
        }
    }

    /// Rejects a field the schema defines but this engine does not implement.
    func rejectUnsupported(_ keys: String..., reason: String) throws(PolicyLoadError) {
        for k in keys where has(k) {
            throw cursor.error(.unsupported, "field '\(k)' is not supported: \(reason)", at: cursor.path.isEmpty ? k : cursor.path + "." + k)
        }
    }
}
