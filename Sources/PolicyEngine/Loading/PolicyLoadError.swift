/// A manifest that could not be turned into a typed policy or inventory object.
///
/// Every error names the file, the zero-based index of the YAML document inside
/// that file, the field path inside the document (for example
/// `spec.rules[0].from[1].source.ipBlocks[2]`) and what was wrong, so a person
/// can go straight to the offending line. A file that produces an error
/// contributes nothing to the loaded bundle.
public struct PolicyLoadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem was found.
    public enum Kind: String, Sendable, Hashable {
        /// The text is not valid YAML.
        case syntax
        /// A field that the schema does not define.
        case unknownField
        /// A required field is missing.
        case missingField
        /// A field has the wrong YAML type (e.g. a list where a map was expected).
        case wrongType
        /// A field has a value outside its domain (bad CIDR, port, enum value, regex...).
        case invalidValue
        /// A field the schema defines but this engine does not implement.
        case unsupported
        /// The same object appears twice.
        case duplicate
        /// The file could not be read.
        case io
        /// The object names another object that does not exist (where Kubernetes would refuse it).
        case missingReference
    }

    /// The file the document came from (or a caller-supplied label).
    public var file: String
    /// Zero-based index of the YAML document inside the file.
    public var documentIndex: Int
    /// Dotted field path inside the document; empty for the whole document.
    public var fieldPath: String
    /// The category of the problem.
    public var kind: Kind
    /// A human-readable explanation.
    public var message: String

    public init(file: String, documentIndex: Int, fieldPath: String, kind: Kind, message: String) {
        self.file = file
        self.documentIndex = documentIndex
        self.fieldPath = fieldPath
        self.kind = kind
        self.message = message
    }

    public var description: String {
        if kind == .io { return "\(file): \(message)" }
        let path = fieldPath.isEmpty ? "" : " \(fieldPath):"
        return "\(file): document \(documentIndex):\(path) \(message)"
    }
}
