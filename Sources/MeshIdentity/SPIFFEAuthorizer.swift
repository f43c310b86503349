/// Why a verified peer was not authorized.
public struct SPIFFEAuthorizationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The verified peer ID that was refused.
    public var peer: SPIFFEID
    /// What the authorizer expected.
    public var expected: String

    public var description: String { "peer \(peer) is not authorized: expected \(expected)" }
}

/// Decides whether a verified peer SPIFFE ID may talk to us (or we to it).
///
/// Used by the TLS layer after the peer's X509-SVID chain has been validated.
public struct SPIFFEAuthorizer: Sendable, CustomStringConvertible {
    private let predicate: @Sendable (SPIFFEID) -> Bool
    /// A human-readable description of what is accepted, used in errors and logs.
    public let description: String

    /// An authorizer from a predicate and a description of what it accepts.
    public init(_ description: String, _ predicate: @escaping @Sendable (SPIFFEID) -> Bool) {
        self.description = description
        self.predicate = predicate
    }

    /// Accepts exactly these IDs.
    public static func exactly(_ ids: Set<SPIFFEID>) -> SPIFFEAuthorizer {
        let list = ids.sorted().map(\.description).joined(separator: ", ")
        return SPIFFEAuthorizer("one of [\(list)]") { ids.contains($0) }
    }

    /// Accepts exactly one ID.
    public static func exactly(_ id: SPIFFEID) -> SPIFFEAuthorizer { exactly([id]) }

    /// Accepts any ID in the trust domain.
    public static func memberOf(_ trustDomain: TrustDomain) -> SPIFFEAuthorizer {
        SPIFFEAuthorizer("any ID in trust domain \(trustDomain)") { $0.trustDomain == trustDomain }
    }

    /// Accepts any ID whose chain verified against the trust bundles.
    public static let anyVerified = SPIFFEAuthorizer("any verified SPIFFE ID") { _ in true }

    /// True when `id` is accepted.
    public func allows(_ id: SPIFFEID) -> Bool { predicate(id) }

    /// Throws ``SPIFFEAuthorizationError`` unless `id` is accepted.
    public func authorize(_ id: SPIFFEID) throws(SPIFFEAuthorizationError) {
        guard predicate(id) else { throw SPIFFEAuthorizationError(peer: id, expected: description) }
    }
}
