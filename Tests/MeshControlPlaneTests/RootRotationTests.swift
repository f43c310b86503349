import Foundation
import IdentityServices
import MeshControlPlane
import MeshIdentity
import MeshTestSupport
import NIOConcurrencyHelpers
import Testing
import X509

@Suite("Root rotation: the CA directory's steps, the control plane following them, the CA's answers and a proxy following those")
struct RootRotationTests {
    static let trustDomain = try! TrustDomain("cluster.local")

    private func scratch() -> CADirectory {
        CADirectory(path: FileManager.default.temporaryDirectory.appendingPathComponent("ca-rotation-\(UUID().uuidString)").path)
    }

    private func root(_ authority: CertificateAuthority) -> Certificate { authority.chain[authority.chain.count - 1] }

    @Test("ca rotate: add, switch, finish in that order only; the bundle lists every root present; openssl verifies across it")
    func directorySteps() async throws {
        let openssl = try #require(Interop.openssl, "openssl (scripts/test installs it)")
        let directory = scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let old = try directory.create(trustDomain: Self.trustDomain)
        for step in [CADirectory.RotationStep.switch, .finish] {
            #expect(throws: CADirectoryError.self, "\(step) before add") { try directory.rotate(step) }
        }

        try directory.rotate(.add)
        #expect(try directory.load().certificate == old.certificate, "the old root still signs after add")
        let roots = try directory.roots()
        #expect(roots.count == 2 && roots[0] == root(old))
        let new = try #require(roots.last)
        #expect(throws: CADirectoryError.self, "add twice") { try directory.rotate(.add) }
        #expect(throws: CADirectoryError.self, "finish before switch") { try directory.rotate(.finish) }

        try directory.rotate(.switch)
        let signer = try directory.load()
        #expect(signer.certificate == new, "the new root signs after switch")
        #expect(Set(try directory.roots()) == [root(old), new], "both still trusted")
        // openssl, with the bundle as its trust store, verifies leaves of both roots.
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("leaves-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: files) }
        let id = try SPIFFEID("spiffe://cluster.local/ns/demo/sa/echo")
        try old.issueSVID(for: id).chainPEM().write(toFile: files + "/old.pem", atomically: true, encoding: .utf8)
        try signer.issueSVID(for: id).chainPEM().write(toFile: files + "/new.pem", atomically: true, encoding: .utf8)
        let both = try await Interop.run(openssl, ["verify", "-CAfile", directory.path + "/bundle.pem", files + "/old.pem", files + "/new.pem"])
        #expect(both.status == 0, "openssl verify with both roots: \(both.combined)")

        try directory.rotate(.finish)
        #expect(try directory.roots() == [new], "only the new root after finish")
        for name in ["next.pem", "next.key", "previous.pem", "previous.key"] {
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/" + name), "\(name) removed")
        }
        let dropped = try await Interop.run(openssl, ["verify", "-CAfile", directory.path + "/bundle.pem", files + "/old.pem"])
        #expect(dropped.status != 0, "openssl no longer verifies a leaf of the dropped root")
    }

    @Test("the control plane's watcher follows each step; the CA's answers end with the roots, signer first; a proxy's follower trusts them and renews its node credential under the new signer, once")
    func followedByServerAndClient() async throws {
        let directory = scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let old = try directory.create(trustDomain: Self.trustDomain)
        let authority = RotatingAuthority(signer: old, roots: try directory.roots())
        let serverBundles = TrustBundleStore(old.trustBundle)
        let signers = NIOLockedValueBox<[Certificate]>([])
        let watcher = CADirectoryWatcher(directory: directory, authority: authority, bundles: serverBundles) { signer in
            signers.withLockedValue { $0.append(signer.certificate) }
        }
        let web = try SPIFFEID("spiffe://cluster.local/ns/default/sa/web")
        let server = IstioCAServer(authority: authority, authenticator: BearerTokenAuthenticator(tokens: ["web-token": web]),
                                   configuration: .init(host: "127.0.0.1", port: 0))
        try await withBackground(run: { try await server.run() }, shutdown: { server.shutdown() }) {
            let port = try await server.listeningPort()
            let answered = NIOLockedValueBox<[Certificate]>([])
            let client = IstioCAClient(host: "127.0.0.1", port: port, identity: web, bearerToken: "web-token")
            var reporting = client
            reporting.onRoots = { roots in answered.withLockedValue { $0 = roots } }

            let first = try await reporting.fetchSVID()
            #expect(first.chain.count == 1, "the roots are not part of the presented chain")
            #expect(answered.withLockedValue { $0 } == [root(old)])

            try directory.rotate(.add)
            try watcher.apply()
            let new = try #require(try directory.roots().last)
            #expect(Set(serverBundles.current[Self.trustDomain]?.authorities ?? []) == [root(old), new], "the control plane trusts both")
            #expect(signers.withLockedValue { $0 }.isEmpty, "no new signer yet")
            let during = try await reporting.fetchSVID()
            #expect(during.leaf.issuer == root(old).subject)
            #expect(answered.withLockedValue { $0 } == [root(old), new], "signer's root first, then the added one")

            try directory.rotate(.switch)
            try watcher.apply()
            #expect(signers.withLockedValue { $0 } == [new], "the signer change is announced (the serving certificate is re-issued)")
            let switched = try await reporting.fetchSVID()
            #expect(switched.leaf.issuer == new.subject)
            #expect(answered.withLockedValue { $0 } == [new, root(old)])

            // A proxy following these answers: trusts both, and renews its node credential (of the old root) under the new one, once.
            let proxyBundles = TrustBundleStore(old.trustBundle)
            let follower = CARootFollower(trustDomain: Self.trustDomain, bundles: proxyBundles)
            let nodeID = try NodeCredential.identity(node: "node-a", trustDomain: "cluster.local")
            let node = SVIDSource(svid: try old.issueSVID(for: nodeID))
            let renewals = CountingProvider { try authority.current.signer.issueSVID(for: nodeID) }
            follower.follow(node: node, renewal: renewals)
            follower.onRoots([new, root(old)])
            #expect(Set(proxyBundles.current[Self.trustDomain]?.authorities ?? []) == [new, root(old)])
            #expect(await eventually { node.current?.leaf.issuer == new.subject }, "node credential renewed under the new root")
            follower.onRoots([new, root(old)])
            try await Task.sleep(for: .milliseconds(100))
            #expect(renewals.count == 1, "once")

            try directory.rotate(.finish)
            try watcher.apply()
            #expect(serverBundles.current[Self.trustDomain]?.authorities == [new], "the control plane drops the old root")
            _ = try await reporting.fetchSVID()
            #expect(answered.withLockedValue { $0 } == [new])
            follower.onRoots([new])
            #expect(proxyBundles.current[Self.trustDomain]?.authorities == [new], "so does the proxy")

            // A directory that does not load (the signer's root missing from the bundle) is refused; the last good state stays.
            try "".write(toFile: directory.path + "/bundle.pem", atomically: true, encoding: .utf8)
            #expect(throws: (any Error).self) { try watcher.apply() }
            #expect(authority.current.roots == [new])
        }
    }
}

/// An ``SVIDProvider`` that counts its calls.
private final class CountingProvider: SVIDProvider, Sendable {
    private let calls = NIOLockedValueBox(0)
    private let issue: @Sendable () throws -> X509SVID
    init(_ issue: @escaping @Sendable () throws -> X509SVID) { self.issue = issue }
    var count: Int { calls.withLockedValue { $0 } }
    func fetchSVID() async throws -> X509SVID {
        calls.withLockedValue { $0 += 1 }
        return try issue()
    }
}
