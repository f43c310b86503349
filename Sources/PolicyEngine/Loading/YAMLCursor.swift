import Yams

/// A position inside one YAML document with strict, path-tracking accessors.
///
/// Reading a mapping through a cursor records which keys were consumed;
/// `finish()` reports the first key nobody asked for as an unknown field.
package struct YAMLCursor {
    package let node: Yams.Node
    package let path: String
    package let file: String
    package let document: Int

    /// A cursor at the root of document `document` of `file`.
    package init(node: Yams.Node, path: String = "", file: String, document: Int) {
        self.node = node
        self.path = path
        self.file = file
        self.document = document
    }

    package func error(_ kind: PolicyLoadError.Kind, _ message: String, at sub: String? = nil) -> PolicyLoadError {
        PolicyLoadError(file: file, documentIndex: document, fieldPath: sub ?? path, kind: kind, message: message)
    }

    package func child(_ node: Yams.Node, _ component: String) -> YAMLCursor {
        YAMLCursor(node: node, path: path.isEmpty ? component : path + "." + component, file: file, document: document)
    }

    package func element(_ node: Yams.Node, _ index: Int) -> YAMLCursor {
        YAMLCursor(node: node, path: path + "[\(index)]", file: file, document: document)
    }

    package var isNull: Bool {
        if case .scalar(let s) = node { return s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string) }
        return false
    }

    /// Opens this node as a mapping.
    package func mapping() throws(PolicyLoadError) -> YAMLMapping {
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

    package func sequence() throws(PolicyLoadError) -> [YAMLCursor] {
        if isNull { return [] }
        guard case .sequence(let s) = node else { throw error(.wrongType, "expected a list") }
        return s.enumerated().map { element($0.element, $0.offset) }
    }

    package func string() throws(PolicyLoadError) -> String {
        guard case .scalar(let s) = node else { throw error(.wrongType, "expected a string") }
        return s.string
    }

    package func int() throws(PolicyLoadError) -> Int {
        guard case .scalar(let s) = node, let v = Int(s.string) else { throw error(.wrongType, "expected an integer") }
        return v
    }

    package func bool() throws(PolicyLoadError) -> Bool {
        guard case .scalar(let s) = node else { throw error(.wrongType, "expected a boolean") }
        switch s.string {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: throw error(.wrongType, "expected a boolean, found '\(s.string)'")
        }
    }

    /// A scalar that may be written as a number or a string (Kubernetes IntOrString).
    package func intOrString() throws(PolicyLoadError) -> IntOrString {
        guard case .scalar(let s) = node else { throw error(.wrongType, "expected a number or a string") }
        if s.style == .plain, let v = Int(s.string) { return .int(v) }
        return .string(s.string)
    }

    package func stringList() throws(PolicyLoadError) -> [String] {
        try sequence().map { c throws(PolicyLoadError) in try c.string() }
    }

    package func stringMap() throws(PolicyLoadError) -> [String: String] {
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
package enum IntOrString: Equatable {
    case int(Int)
    case string(String)
}

/// A mapping being read field by field; unknown keys are reported by `finish()`.
package final class YAMLMapping {
    package let cursor: YAMLCursor
    package let entries: [(String, Yams.Node)]
    private var consumed: Set<String> = []
    private var allConsumed = false

    package init(cursor: YAMLCursor, entries: [(String, Yams.Node)]) {
        self.cursor = cursor
        self.entries = entries
    }

    package var keys: [String] { entries.map(\.0) }

    package func markAllConsumed() { allConsumed = true }

    package func has(_ key: String) -> Bool { entries.contains { $0.0 == key } }

    /// The field, or nil if absent or explicitly null.
    package func optional(_ key: String) -> YAMLCursor? {
        consumed.insert(key)
        guard let n = entries.first(where: { $0.0 == key })?.1 else { return nil }
        let c = cursor.child(n, key)
        return c.isNull ? nil : c
    }

    package func required(_ key: String) throws(PolicyLoadError) -> YAMLCursor {
        guard let c = optional(key) else {
            throw cursor.error(.missingField, "required field '\(key)' is missing", at: cursor.path.isEmpty ? key : cursor.path + "." + key)
        }
        return c
    }

    package func ignore(_ keys: String...) { consumed.formUnion(keys) }

    /// Rejects keys that were never read.
    package func finish() throws(PolicyLoadError) {
        if allConsumed { return }
        for (k, _) in entries where !consumed.contains(k) {
            throw cursor.error(.unknownField, "unknown field '\(k)'", at: cursor.path.isEmpty ? k : cursor.path + "." + k)
        }
    }

    /// Rejects a field the schema defines but this engine does not implement.
    package func rejectUnsupported(_ keys: String..., reason: String) throws(PolicyLoadError) {
        for k in keys where has(k) {
            throw cursor.error(.unsupported, "field '\(k)' is not supported: \(reason)", at: cursor.path.isEmpty ? k : cursor.path + "." + k)
        }
    }
}
