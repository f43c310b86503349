import Foundation
import MeshIdentity

/// The files of a mesh CA in a directory the operator chooses: `ca.pem` (the
/// chain), `ca.key` (mode 0600), `bundle.json` (SPIFFE bundle) and
/// `bundle.pem` (the roots, for openssl). The same layout `meshctl ca init` writes.
public struct CADirectory: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// Creates a self-signed root for `trustDomain`; refuses to replace an existing key unless `force`.
    @discardableResult
    public func create(trustDomain: TrustDomain, validity: TimeInterval = 365 * 86400, force: Bool = false) throws -> CertificateAuthority {
        let keyPath = path + "/ca.key"
        if !force && FileManager.default.fileExists(atPath: keyPath) {
            throw CADirectoryError.exists(keyPath)
        }
        let ca = try CertificateAuthority.selfSigned(trustDomain: trustDomain, validity: validity)
        try Self.write(path + "/ca.pem", ca.chainPEM())
        try Self.write(keyPath, ca.privateKeyPEM, secret: true)
        try Self.writeBundle(ca.trustBundle, to: path)
        return ca
    }

    /// Loads the CA.
    public func load() throws -> CertificateAuthority {
        try CertificateAuthority(chainPEM: Self.read(path + "/ca.pem"), privateKeyPEM: Self.read(path + "/ca.key"))
    }

    /// Issues an SVID for `id` and writes it as `svid.pem`, `svid.key` (0600),
    /// `bundle.pem` and `bundle.json` to `directory` (the layout ztunnel's `--svid` reads).
    @discardableResult
    public func writeCredential(id: SPIFFEID, ttl: TimeInterval, to directory: String) throws -> X509SVID {
        let ca = try load()
        let svid = try ca.issueSVID(for: id, ttl: ttl)
        try Self.write(directory + "/svid.pem", svid.chainPEM())
        try Self.write(directory + "/svid.key", svid.privateKeyPEM, secret: true)
        try Self.writeBundle(ca.trustBundle, to: directory)
        return svid
    }

    static func writeBundle(_ bundle: TrustBundle, to directory: String) throws {
        try write(directory + "/bundle.json", String(decoding: TrustBundleCoding.encode(bundle), as: UTF8.self) + "\n")
        try write(directory + "/bundle.pem", bundle.authoritiesPEM())
    }

    static func write(_ path: String, _ contents: String, secret: Bool = false) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let attributes: [FileAttributeKey: Any]? = secret ? [.posixPermissions: 0o600] : nil
        guard FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: attributes) else {
            throw CADirectoryError.unwritable(path)
        }
    }

    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw CADirectoryError.unreadable(path)
        }
        return text
    }
}

/// A CA directory that cannot be used.
public enum CADirectoryError: Error, Hashable, Sendable, CustomStringConvertible {
    case exists(String)
    case unreadable(String)
    case unwritable(String)

    public var description: String {
        switch self {
        case .exists(let p): return "\(p) exists; pass --force to replace the CA"
        case .unreadable(let p): return "cannot read \(p) (create the CA with `mesh-controlplane ca init --dir DIR`)"
        case .unwritable(let p): return "cannot write \(p)"
        }
    }
}
