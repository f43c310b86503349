import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import IdentityServices
import MeshControlPlane
import MeshIdentity
import MeshProto
import MeshTestSupport
import SwiftProtobuf
import Testing
import X509

@Suite("CA: per-workload certificates for a node's pods only (Istio's impersonation check), over SPIFFE mTLS", .serialized)
struct CATests {
    static let echo = try! SPIFFEID("spiffe://cluster.local/ns/demo/sa/echo")
    /// `default` in demo runs only on node-b (the `legacy` pod).
    static let legacy = try! SPIFFEID("spiffe://cluster.local/ns/demo/sa/default")

    /// Runs the control plane with its CA; `body` gets the harness, the CA directory and the authority.
    private func withCA(_ body: @Sendable (ControlPlaneHarness, CADirectory, CertificateAuthority) async throws -> Void) async throws {
        let manifests = try Manifests.directory()
        let caPath = FileManager.default.temporaryDirectory.appendingPathComponent("ca-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(at: manifests)
            try? FileManager.default.removeItem(atPath: caPath)
        }
        let directory = CADirectory(path: caPath)
        let authority = try directory.create(trustDomain: TrustDomain("cluster.local"))
        try await ControlPlaneHarness.run(directory: manifests, authority: authority) { harness in
            try await body(harness, directory, authority)
        }
    }

    /// The Istio CA client of a ztunnel holding `node`'s credential, asking for `identity`.
    private func client(_ harness: ControlPlaneHarness, _ authority: CertificateAuthority, node: String, identity: SPIFFEID) throws -> IstioCAClient {
        let credential = try authority.issueSVID(for: NodeCredential.identity(node: node, trustDomain: "cluster.local"))
        let security = try SPIFFEGRPCSecurity.client(svids: SVIDSource(svid: credential), bundles: TrustBundleStore(authority.trustBundle),
                                                     authorizer: .exactly(ControlPlaneHarness.serverID))
        return IstioCAClient(host: "127.0.0.1", port: harness.port, identity: credential.id, impersonate: identity, transportSecurity: security)
    }

    private func code(of body: () async throws -> Void) async -> RPCError.Code? {
        do { try await body() } catch let error as RPCError { return error.code } catch { Issue.record("unexpected \(error)") }
        return nil
    }

    @Test("a node gets certificates for the service accounts of its own pods; the chain passes openssl verify and py-spiffe")
    func issuesForLocalPods() async throws {
        try await withCA { harness, directory, authority in
            let svid = try await client(harness, authority, node: "node-a", identity: Self.echo).fetchSVID()
            #expect(svid.id == Self.echo)
            let fromB = try await client(harness, authority, node: "node-b", identity: Self.legacy).fetchSVID()
            #expect(fromB.id == Self.legacy)
            #expect(harness.caCounters.snapshot().issued == 2)

            // Independent checks: openssl verify and py-spiffe/cryptography on the issued SVID.
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("svid-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: out) }
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            try svid.chainPEM().write(to: out.appendingPathComponent("svid.pem"), atomically: true, encoding: .utf8)
            try svid.privateKeyPEM.write(to: out.appendingPathComponent("svid.key"), atomically: true, encoding: .utf8)
            for name in ["bundle.pem", "bundle.json"] {
                try FileManager.default.copyItem(atPath: directory.path + "/" + name, toPath: out.appendingPathComponent(name).path)
            }
            let openssl = try #require(Interop.openssl, "openssl is missing: scripts/test installs it")
            let verified = try Interop.runBlocking(openssl, ["verify", "-CAfile", out.appendingPathComponent("bundle.pem").path, out.appendingPathComponent("svid.pem").path])
            #expect(verified.status == 0 && verified.stdout.contains(": OK"), "\(verified.combined)")
            let python = try #require(Interop.python, "the interop venv is missing: scripts/test creates .venv")
            let checked = try Interop.runBlocking(python, [Interop.script("check_svid.py"), out.path, Self.echo.description])
            #expect(checked.status == 0, "\(checked.combined)")
        }
    }

    @Test("refused with PERMISSION_DENIED: another node's service account, a foreign trust domain, a workload impersonating")
    func impersonationRefused() async throws {
        try await withCA { harness, _, authority in
            #expect(await code { _ = try await client(harness, authority, node: "node-a", identity: Self.legacy).fetchSVID() } == .permissionDenied)
            let foreign = try SPIFFEID("spiffe://evil.example/ns/demo/sa/echo")
            #expect(await code { _ = try await client(harness, authority, node: "node-a", identity: foreign).fetchSVID() } == .permissionDenied)
            // A node that runs nothing gets nothing.
            #expect(await code { _ = try await client(harness, authority, node: "node-c", identity: Self.echo).fetchSVID() } == .permissionDenied)
            // A workload credential may not impersonate at all.
            let workload = try authority.issueSVID(for: Self.echo)
            let security = try SPIFFEGRPCSecurity.client(svids: SVIDSource(svid: workload), bundles: TrustBundleStore(authority.trustBundle),
                                                         authorizer: .exactly(ControlPlaneHarness.serverID))
            let asWorkload = IstioCAClient(host: "127.0.0.1", port: harness.port, identity: workload.id, impersonate: Self.legacy, transportSecurity: security)
            #expect(await code { _ = try await asWorkload.fetchSVID() } == .permissionDenied)
            #expect(harness.caCounters.snapshot().impersonationRefusals == 4 && harness.caCounters.snapshot().issued == 0)
        }
    }

    @Test("renewals: a caller gets its own identity while it exists (its Node, or a pod with its service account), not after")
    func renewals() async throws {
        try await withCA { harness, _, authority in
            func renew(_ id: SPIFFEID) throws -> IstioCAClient {
                let svid = try authority.issueSVID(for: id)
                let security = try SPIFFEGRPCSecurity.client(svids: SVIDSource(svid: svid), bundles: TrustBundleStore(authority.trustBundle),
                                                             authorizer: .exactly(ControlPlaneHarness.serverID))
                return IstioCAClient(host: "127.0.0.1", port: harness.port, identity: id, transportSecurity: security)
            }
            #expect(try await renew(Self.echo).fetchSVID().id == Self.echo)
            let nodeA = try NodeCredential.identity(node: "node-a", trustDomain: "cluster.local")
            #expect(try await renew(nodeA).fetchSVID().id == nodeA)
            let ghost = try SPIFFEID("spiffe://cluster.local/ns/demo/sa/ghost")
            #expect(await code { _ = try await renew(ghost).fetchSVID() } == .permissionDenied)
            let gone = try NodeCredential.identity(node: "node-gone", trustDomain: "cluster.local")
            #expect(await code { _ = try await renew(gone).fetchSVID() } == .permissionDenied)
        }
    }

    @Test("a CSR with two URI SANs and a malformed CSR are refused with INVALID_ARGUMENT")
    func badCSRs() async throws {
        try await withCA { harness, _, authority in
            let key = P256.Signing.PrivateKey()
            let extensions = try Certificate.Extensions {
                SubjectAlternativeNames([.uniformResourceIdentifier(Self.echo.description), .uniformResourceIdentifier("spiffe://cluster.local/ns/demo/sa/client")])
            }
            let twoSANs = try CertificateSigningRequest(
                version: .v1, subject: DistinguishedName(), privateKey: Certificate.PrivateKey(key),
                attributes: CertificateSigningRequest.Attributes([try .init(ExtensionRequest(extensions: extensions))]),
                signatureAlgorithm: .ecdsaWithSHA256)
            let credential = try authority.issueSVID(for: NodeCredential.identity(node: "node-a", trustDomain: "cluster.local"))
            let security = try SPIFFEGRPCSecurity.client(svids: SVIDSource(svid: credential), bundles: TrustBundleStore(authority.trustBundle),
                                                         authorizer: .exactly(ControlPlaneHarness.serverID))
            for csr in [try twoSANs.serializeAsPEM().pemString, "-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n"] {
                var request = Istio_V1_Auth_IstioCertificateRequest()
                request.csr = csr
                request.metadata.fields["ImpersonatedIdentity"] = Google_Protobuf_Value(stringValue: Self.echo.description)
                let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: harness.port), transportSecurity: security)
                let outcome = await code {
                    _ = try await withGRPCClient(transport: transport) { grpc in
                        try await Istio_V1_Auth_IstioCertificateService.Client(wrapping: grpc).createCertificate(request)
                    }
                }
                #expect(outcome == .invalidArgument)
            }
            #expect(harness.caCounters.snapshot().csrRefusals == 2)
        }
    }

    @Test("a client without a certificate from the mesh CA cannot reach ADS or the CA on the mTLS port")
    func foreignClientRefused() async throws {
        try await withCA { harness, _, _ in
            let other = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("cluster.local"))
            let credential = try other.issueSVID(for: NodeCredential.identity(node: "node-a", trustDomain: "cluster.local"))
            let security = try SPIFFEGRPCSecurity.client(svids: SVIDSource(svid: credential), bundles: TrustBundleStore(other.trustBundle),
                                                         authorizer: .anyVerified)
            let client = IstioCAClient(host: "127.0.0.1", port: harness.port, identity: credential.id, impersonate: Self.echo, transportSecurity: security)
            await #expect(throws: (any Error).self) { _ = try await client.fetchSVID() }
            #expect(harness.caCounters.snapshot().csrs == 0)
        }
    }
}
