/// Why an ADS client rejected a response, or could not do what was asked.
///
/// A rejected response is NACKed with ``description`` as `error_detail.message`,
/// so the text is what a control-plane operator reads in istiod's or the
/// server's logs: it names the resource and what is wrong with it.
public enum XDSClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A resource's payload could not be decoded as its type.
    case undecodable(typeURL: String, name: String?, reason: String)
    /// A resource was packed with another type URL than the response's.
    case typeMismatch(expected: String, actual: String, name: String?)
    /// Two resources in one response have the same name.
    case duplicateName(typeURL: String, name: String)
    /// A resource has no name (and none can be derived from its content).
    case missingName(typeURL: String, index: Int)
    /// The type's validation hook refused a resource.
    case invalid(typeURL: String, name: String, reason: String)
    /// A response for a type URL nobody subscribed to.
    case unexpectedType(typeURL: String)
    /// A connection attempt did not open the ADS stream in time; the client retries.
    case connectTimedOut(after: Duration)
    /// The client was asked to do something after ``ADSClient/shutdown()``.
    case shutDown

    public var description: String {
        switch self {
        case .undecodable(let typeURL, let name, let reason):
            return "resource \(name.map { "\"\($0)\" " } ?? "")of type \(typeURL) cannot be decoded: \(reason)"
        case .typeMismatch(let expected, let actual, let name):
            return "resource \(name.map { "\"\($0)\" " } ?? "")is packed as \(actual) in a response for \(expected)"
        case .duplicateName(let typeURL, let name):
            return "response for \(typeURL) contains resource \"\(name)\" twice; names must be unique"
        case .missingName(let typeURL, let index):
            return "resource #\(index) of the response for \(typeURL) has no name"
        case .invalid(let typeURL, let name, let reason):
            return "resource \"\(name)\" of type \(typeURL) is invalid: \(reason)"
        case .unexpectedType(let typeURL):
            return "response for \(typeURL), which this client never subscribed to"
        case .connectTimedOut(let after):
            return "the ADS stream did not open within \(after) (is the address an xDS server speaking gRPC?); retrying"
        case .shutDown:
            return "the ADS client has been shut down"
        }
    }
}
