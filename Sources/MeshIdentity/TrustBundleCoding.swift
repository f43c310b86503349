import Foundation
import X509
import Crypto

/// Errors reading a SPIFFE bundle document.
public struct TrustBundleCodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Where in the document the problem is (`keys[2].x5c`), or `document`.
    public var location: String
    /// What is wrong.
    public var reason: String

    public init(location: String, reason: String) {
        self.location = location
        self.reason = reason
    }

    public var description: String { "invalid SPIFFE bundle at \(location): \(reason)" }
}

/// Reads and writes trust bundles in the SPIFFE bundle format: a JWK set whose
/// X.509 authorities are keys with `use: "x509-svid"` and one `x5c` certificate,
/// plus `spiffe_sequence` and `spiffe_refresh_hint`.
///
/// Keys with an unknown `use` or `kty` are ignored, as the SPIFFE Trust Domain
/// and Bundle specification requires.
public enum TrustBundleCoding {
    private struct Document: Codable {
        var keys: [Key]?
        var spiffe_sequence: UInt64?
        var spiffe_refresh_hint: Int?
    }

    private struct Key: Codable {
        var use: String?
        var kty: String?
        var crv: String?
        var x: String?
        var y: String?
        var n: String?
        var e: String?
        var kid: String?
        var x5c: [String]?
    }

    /// Decodes a bundle document for `trustDomain`.
    public static func decode(_ data: Data, trustDomain: TrustDomain) throws -> TrustBundle {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: data)
        } catch {
            throw TrustBundleCodingError(location: "document", reason: "not a JWK set: \(describe(error))")
        }
        guard let keys = document.keys else {
            throw TrustBundleCodingError(location: "document", reason: "missing \"keys\"")
        }
        var authorities: [Certificate] = []
        for (index, key) in keys.enumerated() {
            guard key.use == "x509-svid" else { continue }  // jwt-svid or unknown use: not ours
            guard key.kty == "EC" || key.kty == "RSA" else { continue }  // unknown key type: ignored
            guard let x5c = key.x5c, x5c.count == 1 else {
                throw TrustBundleCodingError(
                    location: "keys[\(index)].x5c",
                    reason: "an x509-svid key must carry exactly one certificate, found \(key.x5c?.count ?? 0)"
                )
            }
            guard let der = Data(base64Encoded: x5c[0]) else {
                throw TrustBundleCodingError(location: "keys[\(index)].x5c[0]", reason: "not base64")
            }
            let certificate: Certificate
            do {
                certificate = try Certificate(derEncoded: Array(der))
            } catch {
                throw TrustBundleCodingError(location: "keys[\(index)].x5c[0]", reason: "not a DER certificate: \(error)")
            }
            if key.kty == "EC", let x = key.x, let y = key.y {
                guard let p256 = P256.Signing.PublicKey(certificate.publicKey),
                    Base64URL.encode(p256.rawRepresentation.prefix(32)) == x,
                    Base64URL.encode(p256.rawRepresentation.suffix(32)) == y
                else {
                    throw TrustBundleCodingError(
                        location: "keys[\(index)]",
                        reason: "the x/y coordinates do not match the x5c certificate's public key"
                    )
                }
            }
            authorities.append(certificate)
        }
        return TrustBundle(
            trustDomain: trustDomain,
            authorities: authorities,
            sequenceNumber: document.spiffe_sequence,
            refreshHint: document.spiffe_refresh_hint
        )
    }

    /// Reads a bundle file (`bundle.json`).
    public static func read(file path: String, trustDomain: TrustDomain) throws -> TrustBundle {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrustBundleCodingError(location: path, reason: "file not found or not readable")
        }
        return try decode(data, trustDomain: trustDomain)
    }

    /// Encodes a bundle as a SPIFFE bundle document (pretty-printed, stable key order).
    public static func encode(_ bundle: TrustBundle) throws -> Data {
        var keys: [Key] = []
        for certificate in bundle.authorities {
            let der = try CertificateCoding.der(certificate)
            var key = Key(use: "x509-svid", x5c: [Data(der).base64EncodedString()])
            if let p256 = P256.Signing.PublicKey(certificate.publicKey) {
                let raw = p256.rawRepresentation
                key.kty = "EC"
                key.crv = "P-256"
                key.x = Base64URL.encode(raw.prefix(32))
                key.y = Base64URL.encode(raw.suffix(32))
            } else {
                throw TrustBundleCodingError(location: "authority", reason: "only ECDSA P-256 authorities can be written")
            }
            keys.append(key)
        }
        let document = Document(
            keys: keys,
            spiffe_sequence: bundle.sequenceNumber,
            spiffe_refresh_hint: bundle.refreshHint
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(document)
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
            DecodingError.keyNotFound(_, let context), DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default:
            return String(describing: error)
        }
    }
}

/// Base64url without padding (RFC 7515 appendix C).
enum Base64URL {
    static func encode<D: DataProtocol>(_ bytes: D) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
