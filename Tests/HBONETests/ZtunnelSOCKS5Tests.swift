import Foundation
import HBONE
import MeshIdentity
import NIOCore
import Testing
import MeshTestSupport

/// The ztunnel example binary built with the package (`swift build --build-tests` builds it).
enum ZtunnelBinary {
    static var path: String {
        ProcessInfo.processInfo.environment["ZTUNNEL"] ?? Interop.packageRoot + "/.build/debug/ztunnel"
    }
}

@Suite("ztunnel SOCKS5 outbound (example binary over real sockets)", .serialized)
struct ZtunnelSOCKS5Tests {
    @Test("a TCP (non-HBONE) workload is passed through as plain TCP; unknown destinations and refused connects get SOCKS errors",
          .enabled(if: FileManager.default.isExecutableFile(atPath: ZtunnelBinary.path), "ztunnel not built at \(ZtunnelBinary.path)"))
    func passthroughAndRefusals() async throws {
        let upstream = try await TCPUpstream.echo()
        let reserved = try ReservedPort()
        let refusedPort = reserved.port
        let pki = try ServerClientPKI()
        let directory = try Self.passthroughConfiguration(pki)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ztunnel = try Self.passthroughZtunnel(directory: directory)
        defer { ztunnel.stop() }
        #expect(await ztunnel.waitFor("ztunnel ready"), "\(ztunnel.text)")
        let socksPort = try #require(ztunnel.loggedPort("socks5"), "\(ztunnel.text)")

        let passed = try await socks5Connect(socksPort: socksPort, host: "127.0.0.1", port: upstream.port, payload: "plain tcp")
        #expect(passed.stdout == "reply 0\nplain tcp\n", "\(passed.combined)\n\(ztunnel.text)")
        #expect(await ztunnel.waitFor("outbound passthrough closed"), "\(ztunnel.text)")
        #expect(ztunnel.text.contains("bytes_to_destination=9"))

        // Unknown destination: SOCKS5 reply 4 (host unreachable), then the connection is closed.
        let unknown = try await socks5Connect(socksPort: socksPort, host: "127.0.0.99", port: 80, payload: "x")
        #expect(unknown.stdout == "reply 4\nclosed\n", "\(unknown.combined)")
        // A TCP workload whose port refuses: SOCKS5 reply 5 (connection refused).
        let refused = try await socks5Connect(socksPort: socksPort, host: "127.0.0.1", port: refusedPort, payload: "x")
        #expect(refused.stdout == "reply 5\nclosed\n", "\(refused.combined)")
        await upstream.close()
        withExtendedLifetime(reserved) {}
    }

    @Test("a log output nobody reads does not stop ztunnel: connections go on while the pipe is full, and every line comes out once it is read again",
          .enabled(if: FileManager.default.isExecutableFile(atPath: ZtunnelBinary.path), "ztunnel not built at \(ZtunnelBinary.path)"))
    func stalledLogOutput() async throws {
        let upstream = try await TCPUpstream.echo()
        let directory = try Self.passthroughConfiguration(try ServerClientPKI())
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Each connection writes about 200 bytes of log at debug level: 1,500 of them are far more than a pipe holds (64 KiB).
        let ztunnel = try Self.passthroughZtunnel(directory: directory, logLevel: "debug")
        defer { ztunnel.stop() }
        #expect(await ztunnel.waitFor("ztunnel ready"), "\(ztunnel.text)")
        let socksPort = try #require(ztunnel.loggedPort("socks5"), "\(ztunnel.text)")

        ztunnel.pauseOutput()
        let before = ztunnel.text.utf8.count
        let count = 1_500
        let many = try await socks5ConnectMany(socksPort: socksPort, host: "127.0.0.1", port: upstream.port, count: count, payload: "while the log is stuck")
        #expect(many.stdout == "ok \(count)\n", "\(many.combined)")
        ztunnel.resumeOutput()
        // Nothing was dropped (far below the writer's 4 MiB): one access line per connection, each whole.
        #expect(await eventually { ztunnel.text.components(separatedBy: "outbound passthrough closed").count - 1 == count },
                "\(ztunnel.text.components(separatedBy: "outbound passthrough closed").count - 1) access lines")
        #expect(!ztunnel.text.contains("log lines dropped"))
        #expect(ztunnel.text.utf8.count - before > 4 * 65536, "the lines were more than the pipe holds (64 KiB)")
        let metricsPort = try #require(ztunnel.loggedPort("metrics"), "\(ztunnel.text)")
        let metrics = try await Interop.run("/usr/bin/env", ["curl", "-fsS", "http://127.0.0.1:\(metricsPort)/metrics"])
        #expect(metrics.stdout.contains("\nztunnel_log_lines_dropped_total 0\n"), "\(metrics.combined)")
        #expect(ztunnel.text.components(separatedBy: "\n").allSatisfy { $0.isEmpty || $0.hasPrefix("20") }, "every line starts with its timestamp")
        await upstream.close()
    }

    /// A directory with the client SVID of `pki` and a mesh where 127.0.0.1 is a workload outside the mesh (protocol TCP) on another node.
    static func passthroughConfiguration(_ pki: ServerClientPKI) throws -> String {
        let directory = NSTemporaryDirectory() + "ztunnel-socks-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let svid = try pki.ca.issueSVID(for: pki.clientID)
        try svid.chainPEM().write(toFile: directory + "/svid.pem", atomically: true, encoding: .utf8)
        try svid.privateKeyPEM.write(toFile: directory + "/svid.key", atomically: true, encoding: .utf8)
        try pki.ca.trustBundle.authoritiesPEM().write(toFile: directory + "/bundle.pem", atomically: true, encoding: .utf8)
        try """
            workloads:
            - uid: test//v1/Pod/default/plain
              name: plain
              namespace: default
              serviceAccount: plain
              workloadIps: [127.0.0.1]
              node: node-b
              protocol: TCP
            """.write(toFile: directory + "/mesh.yaml", atomically: true, encoding: .utf8)
        return directory
    }

    /// ztunnel on `passthroughConfiguration`'s mesh with every listener on port 0 (read back with `loggedPort`).
    static func passthroughZtunnel(directory: String, logLevel: String = "info") throws -> PeerProcess {
        try PeerProcess(ZtunnelBinary.path, [
            "--config", directory + "/mesh.yaml", "--node", "node-a", "--svid", directory, "--log-level", logLevel,
            "--hbone-listen", "127.0.0.1:0", "--socks5", "127.0.0.1:0", "--readiness", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0",
        ])
    }
}
