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
        let directory = NSTemporaryDirectory() + "ztunnel-socks-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let svid = try pki.ca.issueSVID(for: pki.clientID)
        try svid.chainPEM().write(toFile: directory + "/svid.pem", atomically: true, encoding: .utf8)
        try svid.privateKeyPEM.write(toFile: directory + "/svid.key", atomically: true, encoding: .utf8)
        try pki.ca.trustBundle.authoritiesPEM().write(toFile: directory + "/bundle.pem", atomically: true, encoding: .utf8)
        // 127.0.0.1 is a workload outside the mesh (protocol TCP) on another node.
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
        let socksPort = try await closedPort()
        let ztunnel = try PeerProcess(ZtunnelBinary.path, [
            "--config", directory + "/mesh.yaml", "--node", "node-a", "--svid", directory,
            "--hbone-listen", "127.0.0.1:0", "--socks5", "127.0.0.1:\(socksPort)", "--readiness", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0",
        ])
        defer { ztunnel.stop() }
        #expect(await ztunnel.waitFor("ztunnel ready"), "\(ztunnel.text)")

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
}
