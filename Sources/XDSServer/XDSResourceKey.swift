/// Identifies a resource in a snapshot: its type URL and name.
public struct XDSResourceKey: Sendable, Hashable {
    /// The resource's type URL.
    public var typeURL: String
    /// The resource's name.
    public var name: String

    /// Creates a key.
    public init(typeURL: String, name: String) {
        self.typeURL = typeURL
        self.name = name
    }
}
