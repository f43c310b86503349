import Foundation
import IdentityServices
import MeshIdentity
import MeshTestSupport
import Testing
@testable import XDSServer

@Suite("XDSServer over SPIFFE mTLS")
struct XDSMTLSTests {
    @Test("an authorized SVID streams; an SVID the server does not authorize gets nothing")
    func mtls() async throws {
        let authority = try CertificateAuthority.selfSigned(trustDomain: .clusterLocal)
        let bundles = TrustBundleStore(authority.trustBundle)
        let istiod = try SPIFFEID.istio(namespace: "istio-system", serviceAccount: "istiod")
        let ztunnel = try SPIFFEID.istio(namespace: "istio-system", serviceAccount: "ztunnel")
        let serverSecurity = try SPIFFEGRPCSecurity.server(
            svids: SVIDSource(svid: try authority.issueSVID(for: istiod)),
            bundles: bundles,
            authorizer: .exactly(ztunnel)
        )
        try await withXDSServer(security: serverSecurity) { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(Fixture.clusters(["a"])), forNode: "node-1")
            let good = try openDelta(port: port, security: try SPIFFEGRPCSecurity.client(
                svids: SVIDSource(svid: try authority.issueSVID(for: ztunnel)), bundles: bundles, authorizer: .exactly(istiod)))
            good.send(deltaRequest(XDSTypeURL.cluster, subscribe: ["*"]))
            #expect(try await good.next().resources.map(\.name) == ["a"])
            await good.close()

            // Same trust domain, wrong workload: the server's authorizer refuses it.
            let web = try SPIFFEID.istio(namespace: "default", serviceAccount: "web")
            let refused = try openDelta(port: port, security: try SPIFFEGRPCSecurity.client(
                svids: SVIDSource(svid: try authority.issueSVID(for: web)), bundles: bundles, authorizer: .exactly(istiod)))
            refused.send(deltaRequest(XDSTypeURL.cluster, subscribe: ["*"]))
            #expect(await refused.outcome() != nil)
            #expect(server.counters.snapshot().totalStreams == 1)
        }
    }
}
