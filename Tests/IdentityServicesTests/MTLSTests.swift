import Foundation
import GRPCCore
import IdentityServices
import MeshIdentity
import Testing
import X509
import MeshTestSupport

@Suite("SPIFFE mTLS for the Istio CA")
struct MTLSTests {
    struct Setup {
        let authority: CertificateAuthority
        let bundles: TrustBundleStore
        let agent: SPIFFEID
        let web: SPIFFEID
        let server: IstioCAServer
    }

    static func setup(serverSVIDs given: SVIDSource? = nil, authority given2: CertificateAuthority? = nil) throws -> Setup {
        let authority = try given2 ?? IdentityFixture.authority()
        let bundles = TrustBundleStore(authority.trustBundle)
        let agent = try IdentityFixture.id("istio-system", "ztunnel")
        let web = try IdentityFixture.id("default", "web")
        let istiod = try IdentityFixture.id("istio-system", "istiod")
        let serverSVIDs = try given ?? SVIDSource(svid: try authority.issueSVID(for: istiod))
        let security = try SPIFFEGRPCSecurity.server(svids: serverSVIDs, bundles: bundles, authorizer: .memberOf(IdentityFixture.trustDomain))
        let server = IstioCAServer(
            authority: authority,
            authenticator: MTLSCallerAuthenticator(),
            configuration: .init(host: "127.0.0.1", port: 0, impersonators: [agent], transportSecurity: security)
        )
        return Setup(authority: authority, bundles: bundles, agent: agent, web: web, server: server)
    }

    func client(_ setup: Setup, as caller: SPIFFEID, authority: CertificateAuthority? = nil, port: Int, impersonate: SPIFFEID? = nil, serverMustBe: SPIFFEAuthorizer? = nil) throws -> IstioCAClient {
        let signer = authority ?? setup.authority
        let svids = SVIDSource(svid: try signer.issueSVID(for: caller))
        let istiod = try IdentityFixture.id("istio-system", "istiod")
        let security = try SPIFFEGRPCSecurity.client(svids: svids, bundles: setup.bundles, authorizer: serverMustBe ?? .exactly(istiod))
        return IstioCAClient(host: "127.0.0.1", port: port, identity: caller, impersonate: impersonate, transportSecurity: security)
    }

    @Test("the caller's identity comes from its client certificate; an allowed node agent impersonates")
    func identityFromCertificate() async throws {
        let setup = try Self.setup()
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let own = try await client(setup, as: setup.web, port: port).fetchSVID()
            #expect(own.id == setup.web)
            let forWeb = try await client(setup, as: setup.agent, port: port, impersonate: setup.web).fetchSVID()
            #expect(forWeb.id == setup.web)
            let refused = await #expect(throws: RPCError.self) {
                _ = try await client(setup, as: setup.web, port: port, impersonate: setup.agent).fetchSVID()
            }
            #expect(refused?.code == .permissionDenied)
        }
    }

    @Test("a client certificate from a foreign CA fails the handshake")
    func foreignClient() async throws {
        let setup = try Self.setup()
        let foreign = try CertificateAuthority.selfSigned(trustDomain: IdentityFixture.trustDomain)
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            await #expect(throws: (any Error).self) {
                _ = try await client(setup, as: setup.web, authority: foreign, port: port).fetchSVID()
            }
            // The server is unharmed: a proper client still succeeds.
            #expect(try await client(setup, as: setup.web, port: port).fetchSVID().id == setup.web)
        }
    }

    @Test("with makeTransportSecurity, each request presents the client SVID current then (a renewed node credential), not the one at creation")
    func clientCredentialPerRequest() async throws {
        let setup = try Self.setup()
        let istiod = try IdentityFixture.id("istio-system", "istiod")
        let foreign = try CertificateAuthority.selfSigned(trustDomain: IdentityFixture.trustDomain)
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let svids = SVIDSource(svid: try setup.authority.issueSVID(for: setup.web))
            let client = IstioCAClient(servers: [.init(host: "127.0.0.1", port: port)], identity: setup.web, makeTransportSecurity: {
                try SPIFFEGRPCSecurity.client(svids: svids, bundles: setup.bundles, authorizer: .exactly(istiod))
            })
            #expect(try await client.fetchSVID().id == setup.web)
            // The same client object, after its source moved to a credential the CA does not trust: refused,
            // which shows the new credential was presented (a transport fixed at creation would still succeed).
            svids.publish(try foreign.issueSVID(for: setup.web))
            await #expect(throws: (any Error).self) { _ = try await client.fetchSVID() }
            svids.publish(try setup.authority.issueSVID(for: setup.web))
            #expect(try await client.fetchSVID().id == setup.web, "and back")
        }
    }

    @Test("a client refuses a server whose SPIFFE ID it does not expect")
    func unexpectedServer() async throws {
        let setup = try Self.setup()
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let other = try IdentityFixture.id("istio-system", "not-istiod")
            await #expect(throws: (any Error).self) {
                _ = try await client(setup, as: setup.web, port: port, serverMustBe: .exactly(other)).fetchSVID()
            }
        }
    }

    @Test("a plaintext client cannot reach the mTLS CA")
    func plaintextClient() async throws {
        let setup = try Self.setup()
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            await #expect(throws: (any Error).self) {
                _ = try await IstioCAClient(host: "127.0.0.1", port: port, identity: setup.web).fetchSVID()
            }
        }
    }

    @Test(
        "a rotated server SVID is presented to new connections without a restart (read by openssl s_client)",
        .enabled(if: Interop.isCI || Interop.openssl != nil, "needs openssl")
    )
    func serverRotation() async throws {
        let authority = try IdentityFixture.authority()
        let istiod = try IdentityFixture.id("istio-system", "istiod")
        let initial = try authority.issueSVID(for: istiod)
        let serverSVIDs = SVIDSource(svid: initial)
        let setup = try Self.setup(serverSVIDs: serverSVIDs, authority: authority)
        let openssl = try #require(Interop.openssl)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rotation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let clientSVID = try authority.issueSVID(for: setup.web)
        let certPath = directory.appendingPathComponent("client.pem").path
        let keyPath = directory.appendingPathComponent("client.key").path
        try CertificateCoding.pem(clientSVID.chain).write(toFile: certPath, atomically: true, encoding: .utf8)
        try clientSVID.privateKey.pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)

        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            func servedLeaf() async throws -> Certificate {
                let output = try await Interop.run(openssl, [
                    "s_client", "-connect", "127.0.0.1:\(port)", "-alpn", "h2", "-cert", certPath, "-key", keyPath, "-showcerts",
                ], stdin: "")
                let certificates = try CertificateCoding.certificates(pem: output.stdout)
                return try #require(certificates.first, "no certificate from the server: \(output.combined)")
            }
            #expect(try await servedLeaf().serialNumber == initial.leaf.serialNumber)
            let rotated = try authority.issueSVID(for: istiod)
            serverSVIDs.publish(rotated)
            #expect(try await servedLeaf().serialNumber == rotated.leaf.serialNumber)
            // And a gRPC client still gets its certificate over the rotated server identity.
            #expect(try await client(setup, as: setup.web, port: port).fetchSVID().id == setup.web)
        }
    }
}
