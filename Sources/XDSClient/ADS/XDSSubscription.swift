/// What to (un)subscribe for one resource type: the wildcard, names, or both.
public struct XDSSubscription: Sendable, Hashable {
    /// Every resource of the type.
    public var wildcard: Bool
    /// Resources by name.
    public var names: Set<String>

    /// Creates a subscription.
    public init(wildcard: Bool = false, names: Set<String> = []) {
        self.wildcard = wildcard
        self.names = names
    }

    /// Every resource of the type (sent as `*`, or as the legacy empty list when
    /// ``ADSClient/Configuration/legacyWildcard`` is set).
    public static let wildcard = XDSSubscription(wildcard: true)

    /// Just these resources.
    public static func names(_ names: some Sequence<String>) -> XDSSubscription {
        XDSSubscription(names: Set(names))
    }
}
