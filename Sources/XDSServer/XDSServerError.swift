/// Errors raised by the xDS server and its snapshot cache.
public enum XDSServerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A snapshot lists the same resource name twice for one type.
    case duplicateResource(typeURL: String, name: String)
    /// A resource's packed type URL differs from the type it was filed under.
    case typeMismatch(expected: String, actual: String, name: String)
    /// A resource has an empty name.
    case emptyName(typeURL: String)
    /// A message could not be encoded.
    case encodingFailed(name: String, reason: String)
    /// The server is not listening (not started, or already stopped).
    case notListening

    public var description: String {
        switch self {
        case .duplicateResource(let typeURL, let name):
            "snapshot lists resource '\(name)' of \(typeURL) more than once; give each resource a unique name"
        case .typeMismatch(let expected, let actual, let name):
            "resource '\(name)' is packed as \(actual) but was filed under \(expected); file it under its own type URL"
        case .emptyName(let typeURL):
            "a resource of \(typeURL) has an empty name; every xDS resource needs a name"
        case .encodingFailed(let name, let reason):
            "could not encode resource '\(name)': \(reason)"
        case .notListening:
            "the xDS server is not listening; call run() first and wait for listeningPort()"
        }
    }
}
