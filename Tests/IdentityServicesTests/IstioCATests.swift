import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import IdentityServices
import MeshIdentity
import MeshProto
import Testing
import X509
import MeshTestSupport

@Suite("Istio CA server and client")
struct IstioCATests {
    struct Setup {
        let authority: CertificateAuthority
        let web: SPIFFEID
        let agent: SPIFFEID
        let server: IstioCAServer
    }

    static func setup(maximumTTL: TimeInterval = 90 * 24 * 3600) throws -> Setup {
        let authority = try IdentityFixture.authority()
        let web = try IdentityFixture.id("default", "web")
        let agent = try IdentityFixture.id("istio-system", "ztunnel")
        let server = IstioCAServer(
            authority: authority,
            authenticator: BearerTokenAuthenticator(tokens: ["web-token": web, "agent-token": agent]),
            configuration: .init(host: "127.0.0.1", port: 0, maximumTTL: maximumTTL, impersonators: [agent])
        )
        return Setup(authority: authority, web: web, agent: agent, server: server)
    }

    @Test("a caller gets an SVID for its own identity, chained to the CA, with the requested lifetime")
    func ownIdentity() async throws {
        let setup = try Self.setup()
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let svid = try await IstioCAClient(host: "127.0.0.1", port: port, identity: setup.web, bearerToken: "web-token", validitySeconds: 3600).fetchSVID()
            #expect(svid.id == setup.web)
            #expect(svid.chain.count == 1, "the root is not part of the presented chain")
            #expect(svid.leaf.issuer == setup.authority.certificate.subject)
            #expect(setup.authority.certificate.publicKey.isValidSignature(svid.leaf.signature, for: svid.leaf))
            #expect(svid.expiresAt.timeIntervalSince(svid.notBefore) <= 3600 + 120)
        }
    }

    @Test("CA replicas: a CSR the first cannot take goes to the next; with none up, the last error says why")
    func replicas() async throws {
        let setup = try Self.setup()
        let reserved = try ReservedPort(), dead = reserved.port
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let client = IstioCAClient(servers: [.init(host: "127.0.0.1", port: dead), .init(host: "127.0.0.1", port: port)],
                                       identity: setup.web, bearerToken: "web-token")
            #expect(try await client.fetchSVID().id == setup.web)
            #expect(try await client.fetchSVID().id == setup.web, "and again, from the replica that answered")
        }
        let none = IstioCAClient(servers: [.init(host: "127.0.0.1", port: dead), .init(host: "127.0.0.1", port: dead)],
                                 identity: setup.web, bearerToken: "web-token")
        let error = await #expect(throws: RPCError.self) { _ = try await none.fetchSVID() }
        #expect(error?.code == .unavailable, "\(String(describing: error))")
        withExtendedLifetime(reserved) {}
    }

    @Test("asking for another identity without impersonation rights fails: the CSR names the wrong ID")
    func wrongIdentity() async throws {
        let setup = try Self.setup()
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let error = await #expect(throws: RPCError.self) {
                _ = try await IstioCAClient(host: "127.0.0.1", port: port, identity: setup.agent, bearerToken: "web-token").fetchSVID()
            }
            #expect(error?.code == .invalidArgument)
        }
    }

    @Test("ImpersonatedIdentity is honoured for allowed callers and refused for others")
    func impersonation() async throws {
        let setup = try Self.setup()
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let svid = try await IstioCAClient(host: "127.0.0.1", port: port, identity: setup.agent, bearerToken: "agent-token", impersonate: setup.web).fetchSVID()
            #expect(svid.id == setup.web)
            let error = await #expect(throws: RPCError.self) {
                _ = try await IstioCAClient(host: "127.0.0.1", port: port, identity: setup.web, bearerToken: "web-token", impersonate: setup.agent).fetchSVID()
            }
            #expect(error?.code == .permissionDenied)
        }
    }

    @Test("an unknown token is unauthenticated; a garbage CSR is an invalid argument")
    func badInput() async throws {
        let setup = try Self.setup()
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let unauthenticated = await #expect(throws: RPCError.self) {
                _ = try await IstioCAClient(host: "127.0.0.1", port: port, identity: setup.web, bearerToken: "nope").fetchSVID()
            }
            #expect(unauthenticated?.code == .unauthenticated)
            var garbage = Istio_V1_Auth_IstioCertificateRequest()
            garbage.csr = "not a CSR"
            let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
            let malformed = await #expect(throws: RPCError.self) {
                try await withGRPCClient(transport: transport) { client in
                    _ = try await Istio_V1_Auth_IstioCertificateService.Client(wrapping: client)
                        .createCertificate(garbage, metadata: ["authorization": "Bearer web-token"])
                }
            }
            #expect(malformed?.code == .invalidArgument)
        }
    }

    @Test(
        "a well-formed CSR whose URI SAN is not a SPIFFE ID is an invalid argument (grpcio + cryptography)",
        .enabled(if: PythonPeers.available(["grpc", "cryptography"]), "needs .venv with grpcio and cryptography")
    )
    func csrWithoutSPIFFEID() async throws {
        let setup = try Self.setup()
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let peer = try LinePeer(script: "identity_services_istio_ca.py", arguments: ["127.0.0.1:\(port)", "web-token", "not-a-spiffe-id"])
            defer { peer.stop() }
            let line = try await peer.line(startingWith: "CODE ")
            #expect(line == "CODE INVALID_ARGUMENT", "\(peer.transcript)")
        }
    }

    @Test("requested lifetimes are capped at the configured maximum")
    func lifetimeCap() async throws {
        let setup = try Self.setup(maximumTTL: 600)
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let svid = try await IstioCAClient(host: "127.0.0.1", port: port, identity: setup.web, bearerToken: "web-token", validitySeconds: 86_400).fetchSVID()
            #expect(svid.expiresAt.timeIntervalSince(svid.notBefore) <= 600 + 120)
        }
    }

    @Test(
        "a Python grpcio client calls CreateCertificate and verifies the chain",
        .enabled(if: PythonPeers.available(["grpc", "cryptography"]), "needs .venv with grpcio and cryptography")
    )
    func grpcioInterop() async throws {
        let setup = try Self.setup()
        try await withBackground(run: { try await setup.server.run() }, shutdown: { setup.server.shutdown() }) {
            let port = try await setup.server.listeningPort()
            let own = try LinePeer(script: "identity_services_istio_ca.py", arguments: ["127.0.0.1:\(port)", "web-token", setup.web.description])
            defer { own.stop() }
            let ok = try await own.line(startingWith: "ok: ")
            #expect(ok.hasPrefix("ok: leaf for \(setup.web) signed by the next certificate"), "\(own.transcript)")

            let impersonating = try LinePeer(script: "identity_services_istio_ca.py", arguments: ["127.0.0.1:\(port)", "agent-token", setup.agent.description, setup.web.description])
            defer { impersonating.stop() }
            #expect(try await impersonating.line(startingWith: "ok: ").hasPrefix("ok: leaf for \(setup.web)"), "\(impersonating.transcript)")

            let refused = try LinePeer(script: "identity_services_istio_ca.py", arguments: ["127.0.0.1:\(port)", "web-token", setup.web.description, setup.agent.description])
            defer { refused.stop() }
            #expect(try await refused.line(startingWith: "CODE ") == "CODE PERMISSION_DENIED", "\(refused.transcript)")
        }
    }
}
