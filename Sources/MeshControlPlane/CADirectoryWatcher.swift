import Foundation
import IdentityServices
import Logging
import MeshIdentity
import X509

/// Follows a ``CADirectory`` while the control plane runs: when its files
/// change (a root-rotation step, ``CADirectory/rotate(_:validity:)``), the new
/// signer and roots go into the ``RotatingAuthority`` the Istio CA signs with,
/// the roots into the trust bundle the control plane verifies clients against,
/// and `onSignerChanged` hears of a new signer (to re-issue the serving
/// certificate). Files that do not load (a step half-written, a bad edit) are
/// logged and skipped; the last good state keeps serving.
public struct CADirectoryWatcher: Sendable {
    public let directory: CADirectory
    public let authority: RotatingAuthority
    public let bundles: TrustBundleStore
    public let pollInterval: Duration
    public let onSignerChanged: @Sendable (CertificateAuthority) -> Void
    private let logger: Logger

    public init(directory: CADirectory, authority: RotatingAuthority, bundles: TrustBundleStore, pollInterval: Duration = .seconds(1),
                logger: Logger = Logger(label: "swift-mesh.ca-directory"), onSignerChanged: @escaping @Sendable (CertificateAuthority) -> Void = { _ in }) {
        self.directory = directory
        self.authority = authority
        self.bundles = bundles
        self.pollInterval = pollInterval
        self.onSignerChanged = onSignerChanged
        self.logger = logger
    }

    /// Polls until cancelled.
    public func run() async {
        var seen = fingerprint()
        var refused: [Data?]?
        while !Task.isCancelled {
            do { try await Task.sleep(for: pollInterval) } catch { return }
            let now = fingerprint()
            guard now != seen else { continue }
            do {
                try apply()
                seen = now
                refused = nil
            } catch {
                // Retried on the next poll (the files may be mid-step); said once per content.
                if refused != now {
                    logger.warning("CA directory changed but does not load; still signing as before", metadata: [
                        "directory": "\(directory.path)", "error": "\(error)",
                    ])
                    refused = now
                }
            }
        }
    }

    /// Loads the directory now and applies it.
    public func apply() throws {
        let signer = try directory.load()
        let roots = try directory.roots()
        let own = signer.chain[signer.chain.count - 1]
        guard roots.contains(own) else {
            throw CADirectoryError.rotation("bundle.pem does not contain the signer's root \(own.subject)")
        }
        let before = authority.current
        guard before.signer.certificate != signer.certificate || Set(before.roots) != Set(roots) else { return }
        authority.replace(signer: signer, roots: roots)
        bundles.update(TrustBundle(trustDomain: signer.trustDomain, authorities: roots, sequenceNumber: 1))
        logger.notice("CA directory reloaded", metadata: [
            "signer": "\(signer.certificate.subject)", "roots": "\(roots.map { "\($0.subject)" }.joined(separator: "; "))",
        ])
        if before.signer.certificate != signer.certificate { onSignerChanged(signer) }
    }

    /// The contents of the files that make the state (small: read whole).
    private func fingerprint() -> [Data?] {
        ["ca.pem", "ca.key", "bundle.pem"].map { FileManager.default.contents(atPath: directory.path + "/" + $0) }
    }
}
