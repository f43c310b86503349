import Foundation
import SwiftASN1
import X509
import Crypto

/// Errors reading certificates and keys from PEM or DER.
public struct CertificateDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What could not be read, for the message ("certificate 2", "private key").
    public var what: String
    /// The underlying reason.
    public var reason: String

    public init(what: String, reason: String) {
        self.what = what
        self.reason = reason
    }

    public var description: String { "cannot decode \(what): \(reason)" }
}

/// PEM and DER coding of certificate chains and P-256 keys as the SPIFFE
/// formats use them (PEM files, concatenated DER in the Workload API).
/// Errors are ``CertificateDecodingError``s naming the block that failed.
public enum CertificateCoding {
    /// Splits a PEM string into its documents; errors name the block index.
    static func documents(_ pem: String, what: String) throws -> [PEMDocument] {
        var documents: [PEMDocument] = []
        var remaining = Substring(pem)
        while let begin = remaining.range(of: "-----BEGIN ") {
            guard let endMarker = remaining.range(of: "-----END ", range: begin.upperBound..<remaining.endIndex),
                let close = remaining.range(of: "-----", range: endMarker.upperBound..<remaining.endIndex)
            else {
                throw CertificateDecodingError(what: "\(what) \(documents.count + 1)", reason: "unterminated PEM block")
            }
            let block = String(remaining[begin.lowerBound..<close.upperBound])
            do {
                documents.append(try PEMDocument(pemString: block))
            } catch {
                throw CertificateDecodingError(what: "\(what) \(documents.count + 1)", reason: "malformed PEM: \(error)")
            }
            remaining = remaining[close.upperBound...]
        }
        if documents.isEmpty {
            throw CertificateDecodingError(what: what, reason: "no PEM block found")
        }
        return documents
    }

    public static func certificates(pem: String) throws -> [Certificate] {
        try documents(pem, what: "certificate").enumerated().map { index, document in
            guard document.discriminator == "CERTIFICATE" else {
                throw CertificateDecodingError(
                    what: "certificate \(index + 1)",
                    reason: "expected a CERTIFICATE block, found \(document.discriminator)"
                )
            }
            return try certificate(der: document.derBytes, index: index)
        }
    }

    static func certificate(der: [UInt8], index: Int = 0) throws -> Certificate {
        do {
            return try Certificate(derEncoded: der)
        } catch {
            throw CertificateDecodingError(what: "certificate \(index + 1)", reason: "malformed DER: \(error)")
        }
    }

    /// Splits concatenated DER certificates (the X509-SVID wire form) and parses each.
    public static func certificates(concatenatedDER bytes: [UInt8]) throws -> [Certificate] {
        var result: [Certificate] = []
        var rest = bytes[...]
        while !rest.isEmpty {
            guard let length = derElementLength(rest), length <= rest.count else {
                throw CertificateDecodingError(what: "certificate \(result.count + 1)", reason: "truncated or malformed DER")
            }
            result.append(try certificate(der: Array(rest.prefix(length)), index: result.count))
            rest = rest.dropFirst(length)
        }
        if result.isEmpty { throw CertificateDecodingError(what: "certificate", reason: "no DER data") }
        return result
    }

    /// Total encoded length (header and body) of the DER SEQUENCE at the start of `bytes`.
    private static func derElementLength(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= 2, bytes.first == 0x30 else { return nil }
        let first = bytes[bytes.startIndex + 1]
        if first < 0x80 { return 2 + Int(first) }
        let count = Int(first & 0x7F)
        guard count >= 1, count <= 4, bytes.count >= 2 + count else { return nil }
        var length = 0
        for byte in bytes.dropFirst(2).prefix(count) { length = length << 8 | Int(byte) }
        return 2 + count + length
    }

    static func privateKey(pem: String) throws -> P256.Signing.PrivateKey {
        let document = try documents(pem, what: "private key")[0]
        switch document.discriminator {
        case "PRIVATE KEY", "EC PRIVATE KEY":
            return try privateKey(der: document.derBytes)
        default:
            throw CertificateDecodingError(
                what: "private key",
                reason: "expected a PRIVATE KEY block, found \(document.discriminator)"
            )
        }
    }

    static func privateKey(der: [UInt8]) throws -> P256.Signing.PrivateKey {
        do {
            return try P256.Signing.PrivateKey(derRepresentation: der)
        } catch {
            throw CertificateDecodingError(
                what: "private key",
                reason: "not an ECDSA P-256 key in PKCS#8 or SEC1 DER (\(error))"
            )
        }
    }

    public static func pem(_ certificates: [Certificate]) throws -> String {
        try certificates.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
    }

    public static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    /// Certificates as one byte string of concatenated DER (the Workload API's form).
    public static func concatenatedDER(_ certificates: [Certificate]) throws -> [UInt8] {
        try certificates.flatMap { try der($0) }
    }
}
