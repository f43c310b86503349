/// A SPIFFE ID: `spiffe://<trust-domain>/<path>`.
///
/// Parsing enforces every rule of the SPIFFE-ID specification; a failure is a
/// ``SPIFFEIDError`` naming the rule and the byte position. Istio workload
/// identities (`spiffe://<td>/ns/<namespace>/sa/<service-account>`) have helpers.
///
/// ```swift
/// let id = try SPIFFEID("spiffe://cluster.local/ns/default/sa/web")
/// id.trustDomain.name        // "cluster.local"
/// id.istioNamespace          // "default"
/// ```
public struct SPIFFEID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The trust domain.
    public let trustDomain: TrustDomain
    /// The path, empty or starting with `/` (never ending with `/`).
    public let path: String

    /// The maximum length of a SPIFFE ID in bytes.
    public static let maximumLength = 2048

    /// Parses and validates a SPIFFE ID.
    public init(_ string: String) throws(SPIFFEIDError) {
        let bytes = Array(string.utf8)
        if bytes.isEmpty { throw SPIFFEIDError(rule: .empty, position: 0, input: string) }
        let scheme = Array("spiffe://".utf8)
        guard bytes.starts(with: scheme) else {
            throw SPIFFEIDError(rule: .wrongScheme, position: 0, input: string)
        }
        // Query, fragment and percent-encoding are reported as such wherever they appear.
        for (i, byte) in bytes.enumerated() where i >= scheme.count {
            switch byte {
            case UInt8(ascii: "?"): throw SPIFFEIDError(rule: .query, position: i, input: string)
            case UInt8(ascii: "#"): throw SPIFFEIDError(rule: .fragment, position: i, input: string)
            case UInt8(ascii: "%"): throw SPIFFEIDError(rule: .percentEncoding, position: i, input: string)
            default: continue
            }
        }
        if bytes.count > SPIFFEID.maximumLength {
            throw SPIFFEIDError(rule: .tooLong, position: SPIFFEID.maximumLength, input: string)
        }
        let rest = bytes[scheme.count...]
        let slash = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
        let authority = rest[rest.startIndex..<slash]
        try TrustDomain.validate(authority, offset: scheme.count, input: string)
        let pathBytes = rest[slash...]
        try SPIFFEID.validatePath(pathBytes, input: string)
        self.trustDomain = TrustDomain(unchecked: String(decoding: authority, as: UTF8.self))
        self.path = String(decoding: pathBytes, as: UTF8.self)
    }

    /// Builds an ID from a trust domain and a path such as `/ns/default/sa/web`.
    public init(trustDomain: TrustDomain, path: String) throws(SPIFFEIDError) {
        try self.init("spiffe://\(trustDomain.name)\(path)")
    }

    init(unchecked trustDomain: TrustDomain, path: String) {
        self.trustDomain = trustDomain
        self.path = path
    }

    /// The ID as a URI string.
    public var description: String { "spiffe://\(trustDomain.name)\(path)" }

    /// True when this is the ID of a trust domain itself (empty path).
    public var isTrustDomainID: Bool { path.isEmpty }

    /// The path segments, without slashes.
    public var segments: [Substring] { path.split(separator: "/") }

    public static func < (lhs: SPIFFEID, rhs: SPIFFEID) -> Bool { lhs.description < rhs.description }

    private static func validatePath(_ bytes: ArraySlice<UInt8>, input: String) throws(SPIFFEIDError) {
        guard !bytes.isEmpty else { return }
        var segmentStart = bytes.startIndex + 1  // bytes.first is "/"
        var index = segmentStart
        func checkSegment(_ start: Int, _ end: Int) throws(SPIFFEIDError) {
            let segment = bytes[start..<end]
            if segment.isEmpty {
                // A trailing slash yields an empty last segment.
                let rule: SPIFFEIDError.Rule = end == bytes.endIndex ? .trailingSlash : .emptySegment
                throw SPIFFEIDError(rule: rule, position: start - 1, input: input)
            }
            if segment.elementsEqual([UInt8(ascii: ".")]) || segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                throw SPIFFEIDError(rule: .dotSegment, position: start, input: input)
            }
        }
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "/"):
                try checkSegment(segmentStart, index)
                segmentStart = index + 1
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                break
            default:
                throw SPIFFEIDError(rule: .pathCharacter, position: index, input: input)
            }
            index += 1
        }
        try checkSegment(segmentStart, bytes.endIndex)
    }
}

// MARK: - Istio identities

extension SPIFFEID {
    /// The Istio workload identity `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>`.
    public static func istio(
        trustDomain: TrustDomain = .clusterLocal,
        namespace: String,
        serviceAccount: String
    ) throws(SPIFFEIDError) -> SPIFFEID {
        let id = try SPIFFEID(trustDomain: trustDomain, path: "/ns/\(namespace)/sa/\(serviceAccount)")
        guard id.istioNamespace == namespace, id.istioServiceAccount == serviceAccount else {
            throw SPIFFEIDError(rule: .notIstioIdentity, position: "spiffe://\(trustDomain.name)".utf8.count, input: id.description)
        }
        return id
    }

    /// Namespace and service account when the path has Istio's form `/ns/<ns>/sa/<sa>`, else nil.
    public var istioIdentity: (namespace: String, serviceAccount: String)? {
        let parts = segments
        guard parts.count == 4, parts[0] == "ns", parts[2] == "sa" else { return nil }
        return (String(parts[1]), String(parts[3]))
    }

    /// The Istio namespace, when this is an Istio identity.
    public var istioNamespace: String? { istioIdentity?.namespace }

    /// The Istio service account, when this is an Istio identity.
    public var istioServiceAccount: String? { istioIdentity?.serviceAccount }

    /// The Istio identity, or a ``SPIFFEIDError`` with rule `notIstioIdentity`.
    public func requireIstioIdentity() throws(SPIFFEIDError) -> (namespace: String, serviceAccount: String) {
        guard let identity = istioIdentity else {
            throw SPIFFEIDError(rule: .notIstioIdentity, position: "spiffe://\(trustDomain.name)".utf8.count, input: description)
        }
        return identity
    }
}

extension SPIFFEID: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = try SPIFFEID(container.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
