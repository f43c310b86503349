/// Allocates numeric identities to label sets, deterministically.
///
/// The same label set always gets the same identity from one allocator; new
/// sets get the next free number from 256. Reserved identities are never
/// handed out. An allocator is a value: copy it to fork, keep it to stay stable
/// across recompilations.
public struct IdentityAllocator: Sendable {
    private(set) var byLabels: [Labels: SecurityIdentity] = [:]
    private(set) var labelsByIdentity: [SecurityIdentity: Labels] = [:]
    private var next: UInt32 = SecurityIdentity.firstCluster

    public init() {}

    /// The identity of `labels`, allocating one if needed.
    public mutating func identity(for labels: Labels) -> SecurityIdentity {
        if let id = byLabels[labels] { return id }
        let id = SecurityIdentity(rawValue: next)
        next += 1
        byLabels[labels] = id
        labelsByIdentity[id] = labels
        return id
    }

    /// The identity already allocated to `labels`, if any.
    public func lookup(_ labels: Labels) -> SecurityIdentity? { byLabels[labels] }

    /// The labels of an allocated cluster identity.
    public func labels(of identity: SecurityIdentity) -> Labels? { labelsByIdentity[identity] }

    /// Every allocated cluster identity, in order.
    public var allocated: [SecurityIdentity] { labelsByIdentity.keys.sorted() }
}
