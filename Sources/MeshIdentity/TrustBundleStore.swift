import NIOConcurrencyHelpers

/// A shared, updatable ``TrustBundleSet``: TLS verification reads the newest
/// bundles at every handshake, so a bundle update needs no restart.
public final class TrustBundleStore: Sendable {
    private let bundles: NIOLockedValueBox<TrustBundleSet>

    public init(_ bundles: TrustBundleSet) {
        self.bundles = NIOLockedValueBox(bundles)
    }

    /// Convenience for a single trust domain.
    public convenience init(_ bundle: TrustBundle) {
        self.init(TrustBundleSet([bundle]))
    }

    /// The bundles now in force.
    public var current: TrustBundleSet { bundles.withLockedValue { $0 } }

    /// Replaces all bundles.
    public func replace(with set: TrustBundleSet) { bundles.withLockedValue { $0 = set } }

    /// Adds or replaces one trust domain's bundle.
    public func update(_ bundle: TrustBundle) { bundles.withLockedValue { $0.insert(bundle) } }
}
