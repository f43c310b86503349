import Foundation
import Logging
import MeshIdentity
import NIOConcurrencyHelpers
import X509

/// Keeps a node proxy in step with its CA's roots during a root rotation: the
/// roots at the end of every CA answer become the trust domain's bundle (a new
/// root is trusted before anything it signed arrives; a dropped one stops being
/// trusted), and when the CA signs with a root the node credential does not
/// chain to, the node credential is renewed at once, so it is of the new root
/// before the old one is dropped.
///
/// ```swift
/// let follower = CARootFollower(trustDomain: td, bundles: bundles, logger: logger)
/// let renewal = IstioCARenewal(credential: node, servers: ca, bundles: bundles, server: .exactly(istiod), onRoots: follower.bundleOnly)
/// follower.follow(node: nodeSVIDs, renewal: renewal)
/// IstioCAClient(servers: ca, identity: node.id, impersonate: workload, onRoots: follower.onRoots)
/// ```
public final class CARootFollower: Sendable {
    private struct Node: Sendable {
        let source: SVIDSource
        let renewal: any SVIDProvider
    }

    private let trustDomain: TrustDomain
    private let bundles: TrustBundleStore
    private let logger: Logger
    private let node = NIOLockedValueBox<Node?>(nil)
    private let renewing = NIOLockedValueBox(false)

    public init(trustDomain: TrustDomain, bundles: TrustBundleStore, logger: Logger = Logger(label: "swift-mesh.ca-roots")) {
        self.trustDomain = trustDomain
        self.bundles = bundles
        self.logger = logger
    }

    /// The node credential to renew when the CA's signing root changes, and how.
    public func follow(node source: SVIDSource, renewal: any SVIDProvider) {
        node.withLockedValue { $0 = Node(source: source, renewal: renewal) }
    }

    /// For answers to workload CSRs: updates the bundle and, on a new signing root, renews the node credential.
    public var onRoots: @Sendable ([Certificate]) -> Void {
        { [self] roots in
            self.updateBundle(roots)
            self.renewNodeCredentialIfStale(signer: roots[0])
        }
    }

    /// For answers to the node credential's own renewal: updates the bundle only.
    public var bundleOnly: @Sendable ([Certificate]) -> Void {
        { [self] roots in self.updateBundle(roots) }
    }

    private func updateBundle(_ roots: [Certificate]) {
        let bundle = TrustBundle(trustDomain: trustDomain, authorities: roots, sequenceNumber: 1)
        guard bundles.current[trustDomain]?.authorities != roots else { return }
        bundles.update(bundle)
        logger.notice("trust bundle updated from the CA", metadata: [
            "trust_domain": "\(trustDomain.name)", "roots": "\(roots.map { "\($0.subject)" }.joined(separator: "; "))",
        ])
    }

    private func renewNodeCredentialIfStale(signer: Certificate) {
        guard let node = node.withLockedValue({ $0 }), let held = node.source.current, held.leaf.issuer != signer.subject else { return }
        guard renewing.withLockedValue({ busy in defer { busy = true }; return !busy }) else { return }
        logger.notice("the CA signs with a new root; renewing the node credential", metadata: ["signer": "\(signer.subject)", "node": "\(held.id)"])
        Task {
            defer { renewing.withLockedValue { $0 = false } }
            do {
                node.source.publish(try await node.renewal.fetchSVID(), obtainedAt: Date())
            } catch {
                logger.warning("node credential renewal under the new root failed; tried again with the next certificate", metadata: ["error": "\(error)"])
            }
        }
    }
}
