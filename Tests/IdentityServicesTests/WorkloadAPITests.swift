import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import IdentityServices
import MeshIdentity
import MeshProto
import Testing
import X509
import MeshTestSupport

@Suite("SPIFFE Workload API server and client over a Unix socket")
struct WorkloadAPITests {
    @Test("the client fetches the SVID the server's source holds, with the right ID and key")
    func fetch() async throws {
        let authority = try IdentityFixture.authority()
        let id = try IdentityFixture.id("default", "web")
        let svid = try authority.issueSVID(for: id)
        let source = SVIDSource(svid: svid)
        try await withServer(serving: source, bundles: TrustBundleStore(authority.trustBundle)) { path in
            let fetched = try await WorkloadAPIClient(socketPath: "unix://" + path).fetchSVID()
            #expect(fetched.id == id)
            #expect(fetched.chain == svid.chain)
            #expect(fetched.privateKey.rawRepresentation == svid.privateKey.rawRepresentation)
        }
    }

    @Test("a rotation is pushed on the open stream")
    func pushOnRotation() async throws {
        let authority = try IdentityFixture.authority()
        let id = try IdentityFixture.id("default", "web")
        let first = try authority.issueSVID(for: id)
        let source = SVIDSource(svid: first)
        try await withServer(serving: source, bundles: TrustBundleStore(authority.trustBundle)) { path in
            let mirror = SVIDSource(svid: first)
            let updates = mirror.updates()
            let watcher = Task { try await WorkloadAPIClient(socketPath: path).watch(publishingTo: mirror) }
            defer { watcher.cancel() }
            var iterator = updates.makeAsyncIterator()
            #expect(await iterator.next() == first)
            // The watcher's first publish repeats the current SVID; wait for it before rotating.
            #expect(await iterator.next() == first)
            let second = try authority.issueSVID(for: id)
            source.publish(second)
            #expect(await iterator.next() == second)
        }
    }

    @Test("requests without workload.spiffe.io: true are refused with InvalidArgument")
    func missingSecurityHeader() async throws {
        let authority = try IdentityFixture.authority()
        let source = SVIDSource(svid: try authority.issueSVID(for: try IdentityFixture.id("default", "web")))
        try await withServer(serving: source, bundles: TrustBundleStore(authority.trustBundle)) { path in
            let error = await #expect(throws: RPCError.self) {
                try await withRawClient(path) { api in
                    try await api.fetchX509SVID(SPIFFE_X509SVIDRequest()) { response in
                        for try await _ in response.messages { break }
                    }
                }
            }
            #expect(error?.code == .invalidArgument)
        }
    }

    @Test("the attestor maps callers; a refusing attestor's error reaches the client")
    func attestorRefuses() async throws {
        let authority = try IdentityFixture.authority()
        let refusing: WorkloadAPIServer.Attestor = { caller in
            throw RPCError(code: .permissionDenied, message: "no registration for \(caller.remotePeer)")
        }
        try await withServer(bundles: TrustBundleStore(authority.trustBundle), attestor: refusing) { path in
            let error = await #expect(throws: RPCError.self) {
                _ = try await WorkloadAPIClient(socketPath: path).fetchSVID()
            }
            #expect(error?.code == .permissionDenied)
        }
    }

    @Test("FetchX509Bundles streams the trust bundles keyed by trust domain ID")
    func bundles() async throws {
        let authority = try IdentityFixture.authority()
        let source = SVIDSource(svid: try authority.issueSVID(for: try IdentityFixture.id("default", "web")))
        try await withServer(serving: source, bundles: TrustBundleStore(authority.trustBundle)) { path in
            let bundles = try await withRawClient(path) { api in
                try await api.fetchX509Bundles(
                    SPIFFE_X509BundlesRequest(), metadata: ["workload.spiffe.io": "true"]
                ) { response in
                    for try await message in response.messages { return message.bundles }
                    return [:]
                }
            }
            let der = try #require(bundles["spiffe://cluster.local"])
            #expect(try Certificate(derEncoded: Array(der)) == authority.certificate)
        }
    }

    @Test("an X509-SVID response carries the own bundle and federated bundles of other trust domains")
    func federatedBundles() async throws {
        let authority = try IdentityFixture.authority()
        let partner = try CertificateAuthority.selfSigned(trustDomain: try TrustDomain("partner.example"))
        let id = try IdentityFixture.id("default", "web")
        let source = SVIDSource(svid: try authority.issueSVID(for: id))
        let store = TrustBundleStore(TrustBundleSet([authority.trustBundle, partner.trustBundle]))
        try await withServer(serving: source, bundles: store) { path in
            let response = try await withRawClient(path) { api in
                try await api.fetchX509SVID(
                    SPIFFE_X509SVIDRequest(), metadata: ["workload.spiffe.io": "true"]
                ) { response in
                    for try await message in response.messages { return message }
                    return SPIFFE_X509SVIDResponse()
                }
            }
            let svid = try #require(response.svids.first)
            #expect(svid.spiffeID == id.description)
            #expect(try Certificate(derEncoded: Array(svid.bundle)) == authority.certificate)
            #expect(Array(response.federatedBundles.keys) == ["spiffe://partner.example"])
            #expect(try Certificate(derEncoded: Array(try #require(response.federatedBundles["spiffe://partner.example"]))) == partner.certificate)
        }
    }

    @Test("a relative socket path is rejected with a typed error")
    func badSocketPath() throws {
        let authority = try IdentityFixture.authority()
        let source = SVIDSource(svid: try authority.issueSVID(for: try IdentityFixture.id("default", "web")))
        #expect(throws: IdentityServicesError.invalidSocketPath("relative.sock")) {
            try WorkloadAPIServer(socketPath: "relative.sock", source: source, bundles: TrustBundleStore(authority.trustBundle))
        }
    }

    @Test(
        "py-spiffe's WorkloadApiClient fetches and verifies our X509-SVID",
        .enabled(if: PythonPeers.available(["spiffe", "grpc", "cryptography"]), "needs .venv with spiffe, grpcio, cryptography")
    )
    func pySpiffeInterop() async throws {
        let root = try IdentityFixture.authority()
        let intermediate = try root.makeIntermediate()
        let id = try IdentityFixture.id("interop", "py-spiffe")
        let source = SVIDSource(svid: try intermediate.issueSVID(for: id))
        try await withServer(serving: source, bundles: TrustBundleStore(root.trustBundle)) { path in
            let peer = try LinePeer(script: "identity_services_workload_api.py", arguments: [path, id.description])
            defer { peer.stop() }
            _ = try await peer.line(startingWith: "DONE")
            #expect(peer.transcript.contains("ok: py-spiffe parsed and validated the X509-SVID for \(id)"))
            #expect(peer.transcript.contains("ok: cryptography verified the chain up to the bundle"))
            #expect(peer.transcript.contains("ok: missing security header refused with INVALID_ARGUMENT"))
            #expect(!peer.transcript.contains("FAIL"), "\(peer.transcript)")
        }
    }

    /// Runs a Workload API server on a fresh socket whose callers are mapped by `attestor`,
    /// for the duration of `body`, which gets the socket path once it accepts connections.
    private func withServer<T: Sendable>(
        bundles: TrustBundleStore,
        attestor: @escaping WorkloadAPIServer.Attestor,
        _ body: @Sendable (String) async throws -> T
    ) async throws -> T {
        let path = IdentityFixture.socketPath()
        let server = try WorkloadAPIServer(socketPath: path, bundles: bundles, attestor: attestor)
        return try await withBackground(run: { try await server.run() }, shutdown: { server.shutdown() }) {
            try await server.waitUntilListening()
            return try await body(path)
        }
    }

    /// ``withServer(bundles:attestor:_:)`` serving one source to every caller.
    private func withServer<T: Sendable>(
        serving source: SVIDSource,
        bundles: TrustBundleStore,
        _ body: @Sendable (String) async throws -> T
    ) async throws -> T {
        try await withServer(bundles: bundles, attestor: { _ in source }, body)
    }

    /// A generated Workload API client on `path` that sends only what each test puts in the call.
    private func withRawClient<T: Sendable>(
        _ path: String,
        _ body: @Sendable (SPIFFE_SpiffeWorkloadAPI.Client<HTTP2ClientTransport.Posix>) async throws -> T
    ) async throws -> T {
        let transport = try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: path), transportSecurity: .plaintext)
        return try await withGRPCClient(transport: transport) { client in
            try await body(SPIFFE_SpiffeWorkloadAPI.Client(wrapping: client))
        }
    }
}
