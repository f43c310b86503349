/// A SPIFFE trust domain name, such as `cluster.local` or `example.org`.
///
/// Valid names are 1 to 255 bytes of lower-case letters, digits, `.`, `-` and
/// `_`, as the SPIFFE-ID specification requires.
public struct TrustDomain: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The trust domain name, without scheme.
    public let name: String

    /// Istio's default trust domain.
    public static let clusterLocal = TrustDomain(unchecked: "cluster.local")

    /// Parses `example.org` or `spiffe://example.org`.
    public init(_ string: String) throws(SPIFFEIDError) {
        if string.hasPrefix("spiffe://") || string.contains("://") {
            let id = try SPIFFEID(string)
            self = id.trustDomain
            return
        }
        try TrustDomain.validate(Array(string.utf8)[...], offset: 0, input: string)
        self.name = string
    }

    init(unchecked name: String) {
        self.name = name
    }

    /// The SPIFFE ID of the trust domain itself: `spiffe://<name>`.
    public var id: SPIFFEID { SPIFFEID(unchecked: self, path: "") }

    public var description: String { name }

    public static func < (lhs: TrustDomain, rhs: TrustDomain) -> Bool { lhs.name < rhs.name }

    /// Checks the trust domain characters and length; `offset` positions errors in the full input.
    static func validate(_ bytes: ArraySlice<UInt8>, offset: Int, input: String) throws(SPIFFEIDError) {
        if bytes.isEmpty { throw SPIFFEIDError(rule: .emptyTrustDomain, position: offset, input: input) }
        for (i, byte) in bytes.enumerated() {
            let position = offset + i
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                continue
            case UInt8(ascii: ":"):
                throw SPIFFEIDError(rule: .port, position: position, input: input)
            case UInt8(ascii: "@"):
                throw SPIFFEIDError(rule: .userInfo, position: position, input: input)
            case UInt8(ascii: "%"):
                throw SPIFFEIDError(rule: .percentEncoding, position: position, input: input)
            case UInt8(ascii: "?"):
                throw SPIFFEIDError(rule: .query, position: position, input: input)
            case UInt8(ascii: "#"):
                throw SPIFFEIDError(rule: .fragment, position: position, input: input)
            default:
                throw SPIFFEIDError(rule: .trustDomainCharacter, position: position, input: input)
            }
        }
        if bytes.count > 255 { throw SPIFFEIDError(rule: .trustDomainTooLong, position: offset + 255, input: input) }
    }
}
