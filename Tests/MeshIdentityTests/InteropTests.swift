import Foundation
import NIOCore
import Testing
@testable import MeshIdentity
import MeshTestSupport

/// The meshctl binary built with the package.
enum Meshctl {
    static var path: String {
        ProcessInfo.processInfo.environment["MESHCTL"] ?? Interop.packageRoot + "/.build/debug/meshctl"
    }

    static func run(_ arguments: [String]) throws -> Interop.Output {
        try Interop.runBlocking(path, arguments)
    }

    /// A CA and SVIDs for `ids` written by meshctl into a temporary directory.
    static func issue(_ ids: [String], trustDomain: String = "example.org") throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        let ca = try run(["ca", "init", "--trust-domain", trustDomain, "--out", directory.file("ca")])
        guard ca.status == 0 else { throw MeshctlFailed(output: ca) }
        for (index, id) in ids.enumerated() {
            let issued = try run(["svid", "issue", "--ca", directory.file("ca"), "--id", id, "--ttl", "1h", "--out", directory.file("svid\(index)")])
            guard issued.status == 0 else { throw MeshctlFailed(output: issued) }
        }
        return directory
    }

    struct MeshctlFailed: Error { var output: Interop.Output }
}

@Suite("Interop: openssl, cryptography and py-spiffe against meshctl and MeshTLS", .serialized)
struct InteropTests {
    static let serverID = "spiffe://example.org/ns/default/sa/server"
    static let clientID = "spiffe://example.org/ns/default/sa/client"

    @Test("the independent peers are installed (required under CI=true)")
    func peersPresent() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Meshctl.path), "meshctl not built at \(Meshctl.path)")
        if Interop.isCI {
            #expect(Interop.openssl != nil, "openssl is missing: scripts/test installs it")
            #expect(Interop.python != nil, "the interop venv is missing: scripts/test creates .venv")
        }
    }

    @Test("openssl verify accepts a meshctl-issued leaf against the bundle's CA, and refuses another CA", .enabled(if: Interop.isCI || Interop.openssl != nil, "openssl not installed"))
    func opensslVerify() throws {
        let openssl = try #require(Interop.openssl, "openssl is missing: scripts/test installs it")
        let mine = try Meshctl.issue([Self.clientID])
        let other = try Meshctl.issue([Self.clientID])
        defer { mine.remove(); other.remove() }
        let ok = try Interop.runBlocking(openssl, ["verify", "-CAfile", mine.file("svid0/bundle.pem"), "-purpose", "sslclient", mine.file("svid0/svid.pem")])
        #expect(ok.status == 0, "\(ok.combined)")
        #expect(ok.stdout.contains(": OK"))
        let refused = try Interop.runBlocking(openssl, ["verify", "-CAfile", other.file("svid0/bundle.pem"), mine.file("svid0/svid.pem")])
        #expect(refused.status != 0)
        #expect(refused.combined.contains("unable to get local issuer certificate"))
    }

    func startServer(_ directory: TemporaryDirectory) async throws -> EchoServer {
        let svid = try X509SVID(chainFile: directory.file("svid0/svid.pem"), privateKeyFile: directory.file("svid0/svid.key"))
        let bundle = try TrustBundleCoding.read(file: directory.file("svid0/bundle.json"), trustDomain: svid.id.trustDomain)
        let tls = MeshTLS(svids: SVIDSource(svid: svid), bundles: TrustBundleStore(bundle))
        return try await EchoServer(tls: tls)
    }

    @Test("openssl s_client with a meshctl client SVID completes TLS 1.3 + ALPN h2 with the Swift server", .enabled(if: Interop.isCI || Interop.openssl != nil, "openssl not installed"))
    func opensslClient() async throws {
        let openssl = try #require(Interop.openssl, "openssl is missing: scripts/test installs it")
        let directory = try Meshctl.issue([Self.serverID, Self.clientID])
        defer { directory.remove() }
        let server = try await startServer(directory)
        let client = try PeerProcess(openssl, [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_3", "-alpn", "h2",
            "-cert", directory.file("svid1/svid.pem"), "-key", directory.file("svid1/svid.key"),
            "-CAfile", directory.file("svid1/bundle.pem"), "-verify_return_error",
        ])
        defer { client.stop() }
        // The server greets with the client ID it verified.
        #expect(await client.waitFor("hello \(Self.clientID)"), "\(client.text)")
        client.send("interop-ping\n")
        #expect(await client.waitFor("interop-ping\n"), "\(client.text)")
        let transcript = client.text
        #expect(transcript.contains("TLSv1.3"))
        #expect(transcript.contains("ALPN protocol: h2"))
        #expect(transcript.contains("Verify return code: 0 (ok)"))
        #expect(transcript.contains("TLS_AES_128_GCM_SHA256") || transcript.contains("TLS_AES_256_GCM_SHA384"))
        try await server.close()
    }

    @Test("openssl s_client without a client certificate is refused", .enabled(if: Interop.isCI || Interop.openssl != nil, "openssl not installed"))
    func opensslNoClientCert() async throws {
        let openssl = try #require(Interop.openssl, "openssl is missing: scripts/test installs it")
        let directory = try Meshctl.issue([Self.serverID])
        defer { directory.remove() }
        let server = try await startServer(directory)
        let client = try PeerProcess(openssl, [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_3", "-alpn", "h2",
            "-CAfile", directory.file("svid0/bundle.pem"),
        ])
        defer { client.stop() }
        client.send("ping\n")
        let status = await client.waitForExit()
        #expect(status != nil && status != 0, "\(client.text)")
        #expect(client.text.contains("alert"), "\(client.text)")
        #expect(!client.text.contains("hello spiffe"))
        try await server.close()
    }

    @Test("cryptography and py-spiffe accept meshctl's chain, key and bundles", .enabled(if: Interop.isCI || Interop.python != nil, "interop venv missing (run scripts/test)"))
    func pythonPeers() throws {
        let python = try #require(Interop.python, "the interop venv is missing: scripts/test creates .venv")
        let directory = try Meshctl.issue([Self.clientID])
        defer { directory.remove() }
        let result = try Interop.runBlocking(python, [Interop.script("check_svid.py"), directory.file("svid0"), Self.clientID])
        #expect(result.status == 0, "\(result.combined)")
        #expect(result.stdout.components(separatedBy: "\n").filter { $0.hasPrefix("ok: ") }.count == 5, "\(result.combined)")
        // And the same checker rejects a wrong expectation, so it can fail.
        let wrong = try Interop.runBlocking(python, [Interop.script("check_svid.py"), directory.file("svid0"), Self.serverID])
        #expect(wrong.status == 1)
    }
}

@Suite("meshctl command line")
struct MeshctlTests {
    @Test("issue, inspect and verify")
    func happyPath() throws {
        let directory = try Meshctl.issue(["spiffe://example.org/ns/a/sa/b"])
        defer { directory.remove() }
        let verify = try Meshctl.run(["svid", "verify", "--bundle", directory.file("ca/bundle.json"), directory.file("svid0/svid.pem")])
        #expect(verify.status == 0, "\(verify.combined)")
        #expect(verify.stdout.contains("valid: spiffe://example.org/ns/a/sa/b"))
        let inspect = try Meshctl.run(["svid", "inspect", directory.file("svid0/svid.pem")])
        #expect(inspect.status == 0)
        #expect(inspect.stdout.contains("spiffe id:   spiffe://example.org/ns/a/sa/b"))
        #expect(inspect.stdout.contains("serverAuth, clientAuth"))
        let keyAttributes = try FileManager.default.attributesOfItem(atPath: directory.file("svid0/svid.key"))
        #expect((keyAttributes[.posixPermissions] as? Int) == 0o600)
        let parse = try Meshctl.run(["id", "parse", "spiffe://example.org/ns/a/sa/b"])
        #expect(parse.stdout.contains("namespace a, service account b"))
    }

    @Test("verification failures exit 1 with the reason")
    func verifyFails() throws {
        let mine = try Meshctl.issue(["spiffe://example.org/x"])
        let other = try Meshctl.issue(["spiffe://example.org/x"])
        defer { mine.remove(); other.remove() }
        let result = try Meshctl.run(["svid", "verify", "--bundle", other.file("ca/bundle.json"), mine.file("svid0/svid.pem")])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("meshctl: invalid: the chain does not lead to a trusted root"), "\(result.stderr)")
        let wrongTD = try Meshctl.run(["svid", "verify", "--bundle", other.file("ca/bundle.json"), "--trust-domain", "other.org", mine.file("svid0/svid.pem")])
        #expect(wrongTD.status == 1)
        #expect(wrongTD.stderr.contains("no trust bundle for trust domain example.org"))
    }

    @Test("malformed or unreadable input: one line on stderr, non-zero exit, no stack trace", arguments: [
        (["id", "parse", "spiffe://example.org/a/"], Int32(1), "must not end with '/'"),
        (["id", "parse", "https://x"], 1, "scheme must be exactly"),
        (["svid", "inspect", "/nonexistent.pem"], 2, "cannot read certificate chain /nonexistent.pem"),
        (["svid", "verify", "--bundle", "/nonexistent.json", "/nonexistent.pem"], 2, "cannot read"),
        (["svid", "issue", "--ca", "/nonexistent", "--id", "spiffe://example.org/x", "--out", "/tmp/x"], 2, "cannot read CA certificate"),
        (["svid", "issue", "--ca", "/nonexistent", "--id", "spiffe://Example.org/x", "--out", "/tmp/x"], 2, "trust domain may contain only"),
        (["ca", "init", "--trust-domain", "bad domain", "--out", "/tmp/x"], 2, "trust domain may contain only"),
        (["svid", "issue", "--ca", "/tmp", "--id", "spiffe://example.org/x", "--ttl", "soon", "--out", "/tmp/x"], 64, "--ttl"),
    ])
    func badInput(arguments: [String], status: Int32, message: String) throws {
        let result = try Meshctl.run(arguments)
        #expect(result.status == status, "\(result.combined)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!result.combined.contains("Fatal error"))
        #expect(!result.combined.contains("Stack dump"))
        if status != 64 {
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        }
    }

    @Test("garbage certificate and bundle files are refused cleanly")
    func garbageFiles() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("garbage.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
        try directory.write("bundle.json", "{\"keys\": 5}")
        let inspect = try Meshctl.run(["svid", "inspect", directory.file("garbage.pem")])
        #expect(inspect.status == 2)
        #expect(inspect.stderr.contains("cannot decode certificate 1"))
        let verify = try Meshctl.run(["svid", "verify", "--bundle", directory.file("bundle.json"), directory.file("garbage.pem")])
        #expect(verify.status == 2)
        #expect(verify.stderr.split(separator: "\n").count == 1)
    }
}
