import Foundation
import MeshIdentity
import X509

/// The files of a mesh CA in a directory the operator chooses: `ca.pem` (the
/// chain), `ca.key` (mode 0600), `bundle.json` (SPIFFE bundle) and
/// `bundle.pem` (the roots, for openssl). The same layout `meshctl ca init` writes.
///
/// Root rotation (``rotate(_:)``) adds `next.pem`/`next.key` (a new root, trusted
/// but not signing), then moves the signer to `previous.*` and `next.*` to
/// `ca.*`, then removes `previous.*`; `bundle.*` always lists every root present.
/// A running `mesh-controlplane` follows each step (``CADirectoryWatcher``).
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

    /// The roots to trust (`bundle.pem`), or the signer's root if there is no bundle.
    public func roots() throws -> [Certificate] {
        guard FileManager.default.fileExists(atPath: path + "/bundle.pem") else {
            let signer = try load()
            return [signer.chain[signer.chain.count - 1]]
        }
        return try CertificateCoding.certificates(pem: Self.read(path + "/bundle.pem"))
    }

    /// One step of a root rotation. Wait at least half a workload certificate's lifetime
    /// after `add` (every proxy renews once and learns the new root) and a whole lifetime
    /// after `switch` (every certificate of the old root is renewed) before the next step.
    public enum RotationStep: String, CaseIterable, Sendable {
        /// A new root is created (`next.*`) and trusted beside the signer's; the old one still signs.
        case add
        /// The new root signs; the old one (`previous.*`) is still trusted.
        case `switch`
        /// The old root is no longer trusted and its files are removed.
        case finish
    }

    /// Performs `step`; returns what it did. Refuses a step out of order with the reason.
    @discardableResult
    public func rotate(_ step: RotationStep, validity: TimeInterval = 365 * 86400) throws -> String {
        let signer = try load()
        let manager = FileManager.default
        func exists(_ name: String) -> Bool { manager.fileExists(atPath: path + "/" + name) }
        switch step {
        case .add:
            guard !exists("next.pem") else { throw CADirectoryError.rotation("a new root was added already (next.pem); run `switch`") }
            guard !exists("previous.pem") else { throw CADirectoryError.rotation("the previous rotation is not finished (previous.pem); run `finish`") }
            let next = try CertificateAuthority.selfSigned(trustDomain: signer.trustDomain, validity: validity)
            try Self.write(path + "/next.key", next.privateKeyPEM, secret: true)
            try Self.write(path + "/next.pem", next.chainPEM())
            try writeRoots([signer, next])
            return "added root \(next.certificate.subject); trusted beside \(signer.certificate.subject), which still signs"
        case .switch:
            guard exists("next.pem") else { throw CADirectoryError.rotation("no new root to switch to (next.pem); run `add` first") }
            let next = try CertificateAuthority(chainPEM: Self.read(path + "/next.pem"), privateKeyPEM: Self.read(path + "/next.key"))
            try Self.write(path + "/previous.key", signer.privateKeyPEM, secret: true)
            try Self.write(path + "/previous.pem", signer.chainPEM())
            // The key first: a reader that sees the new certificate with the old key refuses the pair and tries again.
            try Self.write(path + "/ca.key", next.privateKeyPEM, secret: true)
            try Self.write(path + "/ca.pem", next.chainPEM())
            try manager.removeItem(atPath: path + "/next.pem")
            try manager.removeItem(atPath: path + "/next.key")
            return "\(next.certificate.subject) signs now; \(signer.certificate.subject) is still trusted"
        case .finish:
            guard exists("previous.pem") else { throw CADirectoryError.rotation("no previous root to drop (previous.pem); run `add` and `switch` first") }
            let previous = try CertificateCoding.certificates(pem: Self.read(path + "/previous.pem"))
            try writeRoots([signer])
            try manager.removeItem(atPath: path + "/previous.pem")
            try manager.removeItem(atPath: path + "/previous.key")
            return "\(previous.first.map { "\($0.subject)" } ?? "the previous root") is no longer trusted; \(signer.certificate.subject) signs"
        }
    }

    private func writeRoots(_ authorities: [CertificateAuthority]) throws {
        let roots = authorities.map { $0.chain[$0.chain.count - 1] }
        try Self.writeBundle(TrustBundle(trustDomain: authorities[0].trustDomain, authorities: roots, sequenceNumber: 1), to: path)
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

    /// Writes beside, then renames over `path`, so a reader sees the old file or the new one, never half.
    static func write(_ path: String, _ contents: String, secret: Bool = false) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let attributes: [FileAttributeKey: Any]? = secret ? [.posixPermissions: 0o600] : nil
        let staging = path + ".writing"
        guard FileManager.default.createFile(atPath: staging, contents: Data(contents.utf8), attributes: attributes),
              rename(staging, path) == 0 else {
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
    /// A root-rotation step out of order.
    case rotation(String)

    public var description: String {
        switch self {
        case .exists(let p): return "\(p) exists; pass --force to replace the CA"
        case .unreadable(let p): return "cannot read \(p) (create the CA with `mesh-controlplane ca init --dir DIR`)"
        case .unwritable(let p): return "cannot write \(p)"
        case .rotation(let reason): return "root rotation: \(reason)"
        }
    }
}
