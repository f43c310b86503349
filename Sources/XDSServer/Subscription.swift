/// What one stream wants of one resource type: explicit names, the wildcard,
/// or both.
///
/// The wildcard is either explicit (`*` in the names) or "legacy": a first
/// request with no names at all, which stays wildcard until the client names
/// resources.
struct Subscription: Sendable, Equatable {
    var wildcard = false
    var legacyWildcard = false
    var names: Set<String> = []

    func matches(_ name: String) -> Bool { wildcard || names.contains(name) }

    /// The state after a SotW request listing `requested` (the full set each time).
    static func sotw(previous: Subscription?, requested: [String]) -> Subscription {
        var names = Set(requested)
        let explicit = names.remove(XDSTypeURL.wildcard) != nil
        var next = Subscription()
        if let previous {
            next.legacyWildcard = previous.legacyWildcard && names.isEmpty && !explicit
        } else {
            next.legacyWildcard = names.isEmpty && !explicit
        }
        next.wildcard = explicit || next.legacyWildcard
        next.names = names
        return next
    }

    /// Applies a delta request's subscribe and unsubscribe lists.
    mutating func applyDelta(first: Bool, subscribe: [String], unsubscribe: [String]) {
        if first && subscribe.isEmpty {
            legacyWildcard = true
            wildcard = true
        }
        for name in subscribe {
            if name == XDSTypeURL.wildcard {
                wildcard = true
            } else {
                names.insert(name)
            }
        }
        for name in unsubscribe {
            if name == XDSTypeURL.wildcard {
                wildcard = false
                legacyWildcard = false
            } else {
                names.remove(name)
            }
        }
    }
}
