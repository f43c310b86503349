import Foundation
import X509
import Crypto

/// An X.509 SPIFFE Verifiable Identity Document: a certificate chain (leaf
/// first, then intermediates), the leaf's private key, and the SPIFFE ID from
/// the leaf's single URI SAN.
///
/// Constructing an `X509SVID` checks that the key belongs to the leaf and that
/// the leaf carries exactly one valid SPIFFE ID; it does not check trust. Use
/// ``X509SVIDVerifier`` against a ``TrustBundleSet`` for that.
public struct X509SVID: Sendable, Hashable {
    /// The SPIFFE ID of the leaf.
    public let id: SPIFFEID
    /// The certificate chain, leaf first.
    public let chain: [Certificate]
    /// The leaf's private key (ECDSA P-256).
    public let privateKey: P256.Signing.PrivateKey

    /// The leaf certificate.
    public var leaf: Certificate { chain[0] }
    /// The leaf's notBefore.
    public var notBefore: Date { leaf.notValidBefore }
    /// The leaf's notAfter: the SVID must not be used after this instant.
    public var expiresAt: Date { leaf.notValidAfter }
    /// The instant at which the SVID should be renewed: half of its lifetime.
    public var renewAt: Date { notBefore.addingTimeInterval(expiresAt.timeIntervalSince(notBefore) / 2) }

    /// Builds an SVID from parsed parts.
    public init(chain: [Certificate], privateKey: P256.Signing.PrivateKey) throws {
        guard let leaf = chain.first else {
            throw X509SVIDError.emptyChain
        }
        guard Certificate.PublicKey(privateKey.publicKey) == leaf.publicKey else {
            throw X509SVIDError.keyMismatch
        }
        self.id = try X509SVIDVerifier.spiffeID(ofLeaf: leaf)
        self.chain = chain
        self.privateKey = privateKey
    }

    /// Reads an SVID from a PEM chain (leaf first) and a PEM private key (PKCS#8 or SEC1).
    public init(chainPEM: String, privateKeyPEM: String) throws {
        try self.init(chain: CertificateCoding.certificates(pem: chainPEM), privateKey: CertificateCoding.privateKey(pem: privateKeyPEM))
    }

    /// Reads an SVID from concatenated DER certificates and a DER private key.
    public init(chainDER: [UInt8], privateKeyDER: [UInt8]) throws {
        try self.init(
            chain: CertificateCoding.certificates(concatenatedDER: chainDER),
            privateKey: CertificateCoding.privateKey(der: privateKeyDER)
        )
    }

    /// Reads `svid.pem` and `svid.key` style files.
    public init(chainFile: String, privateKeyFile: String) throws {
        try self.init(
            chainPEM: MeshFiles.readText(chainFile, what: "certificate chain"),
            privateKeyPEM: MeshFiles.readText(privateKeyFile, what: "private key")
        )
    }

    /// The chain as PEM, leaf first.
    public func chainPEM() throws -> String { try CertificateCoding.pem(chain) }

    /// The private key as PKCS#8 PEM.
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// The chain as concatenated DER (the Workload API's wire form).
    public func chainDER() throws -> [UInt8] { try CertificateCoding.concatenatedDER(chain) }

    public static func == (lhs: X509SVID, rhs: X509SVID) -> Bool {
        lhs.chain == rhs.chain && lhs.privateKey.rawRepresentation == rhs.privateKey.rawRepresentation
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(chain) }
}

/// Errors building an ``X509SVID`` from its parts.
public enum X509SVIDError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No certificate was given.
    case emptyChain
    /// The private key does not match the leaf certificate's public key.
    case keyMismatch

    public var description: String {
        switch self {
        case .emptyChain: "the SVID has no certificate"
        case .keyMismatch: "the private key does not belong to the leaf certificate"
        }
    }
}

/// Small file helpers with errors a person can act on.
enum MeshFiles {
    static func readText(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CertificateDecodingError(what: "\(what) \(path)", reason: "file not found or not readable")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CertificateDecodingError(what: "\(what) \(path)", reason: "not UTF-8 text")
        }
        return text
    }
}
