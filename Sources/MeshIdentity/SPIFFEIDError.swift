/// Why a string is not a valid SPIFFE ID or trust domain name.
///
/// Each case names one rule of the SPIFFE-ID specification; ``position`` is the
/// zero-based UTF-8 byte offset in the input where the rule was broken, so a
/// person can point at the offending character.
public struct SPIFFEIDError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The rule of the SPIFFE-ID specification that the input breaks.
    public enum Rule: String, Hashable, Sendable {
        case empty = "the input is empty"
        case wrongScheme = "the scheme must be exactly 'spiffe://' (lower case)"
        case tooLong = "a SPIFFE ID must not be longer than 2048 bytes"
        case emptyTrustDomain = "the trust domain is empty"
        case trustDomainTooLong = "a trust domain name must not be longer than 255 bytes"
        case trustDomainCharacter = "a trust domain may contain only lower-case letters, digits, '.', '-' and '_'"
        case port = "a SPIFFE ID must not contain a port"
        case userInfo = "a SPIFFE ID must not contain user info ('@')"
        case query = "a SPIFFE ID must not contain a query ('?')"
        case fragment = "a SPIFFE ID must not contain a fragment ('#')"
        case percentEncoding = "a SPIFFE ID must not contain percent-encoded characters"
        case emptySegment = "a path segment is empty ('//')"
        case dotSegment = "a path segment must not be '.' or '..'"
        case trailingSlash = "a SPIFFE ID path must not end with '/'"
        case pathCharacter = "a path segment may contain only letters, digits, '.', '-' and '_'"
        case notIstioIdentity = "an Istio identity has the path /ns/<namespace>/sa/<service-account>"
    }

    /// The broken rule.
    public var rule: Rule
    /// Zero-based UTF-8 byte offset of the offending character.
    public var position: Int
    /// The input, for the message.
    public var input: String

    public init(rule: Rule, position: Int, input: String) {
        self.rule = rule
        self.position = position
        self.input = input
    }

    public var description: String {
        let shown = input.utf8.count > 80 ? String(input.prefix(77)) + "..." : input
        return "invalid SPIFFE ID \"\(shown)\": \(rule.rawValue) (at byte \(position))"
    }
}
