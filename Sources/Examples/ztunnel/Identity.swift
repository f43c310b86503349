import ArgumentParser
import ExampleSupport
import Foundation
import GRPCNIOTransportHTTP2
import IdentityServices
import Logging
import MeshIdentity
import NIOCore
import XDSClient

/// Which SVIDs this ztunnel presents: one for every tunnel (`--svid`), or each
/// local workload's own, requested from the control plane's CA with the node
/// credential (`--node-credential`), as Istio's ztunnel does.
struct ZtunnelIdentity: Sendable, CustomStringConvertible {
    let tls: any MeshTLSProvider
    let certificates: WorkloadCertificates?
    /// Renews the node credential at half its lifetime (in memory), with the node credential mode.
    let renewal: Task<Void, Never>?
    /// How to reach the control plane: plaintext, or mTLS with the node credential.
    let controlPlaneSecurity: @Sendable () throws -> HTTP2ClientTransport.Posix.TransportSecurity
    let description: String

    var perWorkload: Bool { certificates != nil }

    static func load(svid: String?, nodeCredential: String?, caAddress: String?, controlPlaneIdentity: String?, store: WorkloadStore, node: String,
                     logger: Logger) throws -> ZtunnelIdentity {
        if let svid {
            let loaded = try X509SVID(chainFile: svid + "/svid.pem", privateKeyFile: svid + "/svid.key")
            let bundle = try TrustBundle(trustDomain: loaded.id.trustDomain, pem: String(contentsOfFile: svid + "/bundle.pem", encoding: .utf8))
            return ZtunnelIdentity(tls: MeshTLS(svids: SVIDSource(svid: loaded), bundles: TrustBundleStore(bundle)), certificates: nil, renewal: nil,
                                   controlPlaneSecurity: { .plaintext }, description: "\(loaded.id) (every tunnel)")
        }
        guard let directory = nodeCredential, let caAddress else { throw ValidationError("give --svid, or --node-credential with --ca-address") }
        let credential = try X509SVID(chainFile: directory + "/svid.pem", privateKeyFile: directory + "/svid.key")
        let trustDomain = credential.id.trustDomain
        let bundles = TrustBundleStore(try TrustBundle(trustDomain: trustDomain, pem: String(contentsOfFile: directory + "/bundle.pem", encoding: .utf8)))
        // Only the control plane's own identity may serve xDS and sign certificates for this node.
        let controlPlane = try SPIFFEID(controlPlaneIdentity ?? "spiffe://\(trustDomain.name)/ns/istio-system/sa/istiod")
        let caServers = try HostPort.parseList(caAddress).map { IstioCAClient.Server(host: $0.0, port: $0.1) }
        // The CA's answers keep the trust bundle (and, in a root rotation, the node credential) in step with its roots.
        let roots = CARootFollower(trustDomain: trustDomain, bundles: bundles, logger: logger)
        // The node credential renews itself at the CA (allowed while its Node exists), with the credential it holds.
        let nodeRenewal = IstioCARenewal(credential: credential, servers: caServers, bundles: bundles, server: .exactly(controlPlane),
                                         onRoots: roots.bundleOnly, logger: logger)
        let nodeSVIDs = SVIDSource(provider: nodeRenewal, logger: logger)
        nodeSVIDs.publish(credential)
        roots.follow(node: nodeSVIDs, renewal: nodeRenewal)
        let security: @Sendable () throws -> HTTP2ClientTransport.Posix.TransportSecurity = {
            try SPIFFEGRPCSecurity.client(svids: nodeSVIDs, bundles: bundles, authorizer: .exactly(controlPlane), logger: logger)
        }
        let certificates = WorkloadCertificates(trustDomain: trustDomain, bundles: bundles, logger: logger) { id in
            // The node credential current at each request (it renews; a rotation replaces its root).
            IstioCAClient(servers: caServers, identity: credential.id, impersonate: id, makeTransportSecurity: security, onRoots: roots.onRoots)
        }
        return ZtunnelIdentity(tls: certificates, certificates: certificates, renewal: Task { _ = try? await nodeSVIDs.run() },
                               controlPlaneSecurity: security, description: "per workload, node credential \(credential.id)")
    }

    /// The identity of the workload of this node at `address`, if any.
    func localIdentity(_ address: NIOCore.SocketAddress?, store: WorkloadStore, node: String) -> SPIFFEID? {
        guard let ip = address?.ipAddress else { return nil }
        return store.localWorkload(address: ip, node: node).flatMap { try? $0.identity() }
    }

    /// Keeps the certificates of the identities of this node's workloads only, as the store changes,
    /// and prefetches the ones not held yet in the background.
    func retainLocalIdentities(store: WorkloadStore, node: String) -> Task<Void, Never>? {
        guard let certificates else { return nil }
        return Task {
            for await _ in store.changes() {
                let local = Set(store.workloads(onNode: node).compactMap { try? $0.identity() })
                await certificates.retain(local)
                await certificates.prefetch(local)
            }
        }
    }

    func close() async {
        renewal?.cancel()
        await certificates?.close()
    }
}
