import Foundation
import HBONE
import MeshIdentity
import NIOCore
import Testing
import MeshTestSupport

@Suite("HBONE SVID rotation")
struct RotationTests {
    /// Whether `text` contains the whole PEM body of the SVID's leaf certificate.
    static func contains(_ text: String, leafOf svid: X509SVID) throws -> Bool {
        let lines = try svid.chainPEM().split(separator: "\n")
        let body = lines.dropFirst().prefix { !$0.hasPrefix("-----END") }
        return body.allSatisfy { text.contains($0) }
    }

    @Test("rotation does not break an open tunnel; new connections present the new certificate", .enabled(if: Interop.openssl != nil, "needs openssl"))
    func rotation() async throws {
        let pki = try ServerClientPKI()
        let oldSVID = try pki.ca.issueSVID(for: pki.serverID)
        let source = SVIDSource(svid: oldSVID)
        let server = HBONEServer(tls: MeshTLS(svids: source, bundles: pki.bundles), handler: RecordingInboundHandler(), configuration: TestConfig.server())
        let address = try await server.start()
        let upstream = try await TCPUpstream.echo()
        let client = HBONEClient(tls: try pki.tls(pki.clientID), configuration: TestConfig.client())
        let request = HBONEConnectRequest(authority: try HBONEAuthority(upstream.address), peer: address, expectedIdentities: [pki.serverID])
        let newSVID = try pki.ca.issueSVID(for: pki.serverID)

        let echoed = try await client.openStream(request).executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            try await outbound.write(ByteBuffer(string: "before"))
            let first = try await iterator.next().map { String(buffer: $0) }
            source.publish(newSVID)
            try await outbound.write(ByteBuffer(string: "after"))
            outbound.finish()
            var rest = ""
            while let chunk = try await iterator.next() { rest += String(buffer: chunk) }
            return (first ?? "") + rest
        }
        #expect(echoed == "beforeafter")

        let files = try PEMFiles(pki: pki, ids: ["client": pki.clientID])
        defer { files.remove() }
        let output = try await Interop.run(try #require(Interop.openssl), [
            "s_client", "-connect", "127.0.0.1:\(address.port!)", "-alpn", "h2", "-noservername", "-showcerts",
            "-cert", files.cert("client"), "-key", files.key("client"), "-CAfile", files.ca,
        ], stdin: "")
        #expect(try Self.contains(output.combined, leafOf: newSVID))
        #expect(try !Self.contains(output.combined, leafOf: oldSVID))
        await client.close()
        await server.shutdown()
        await upstream.close()
    }
}
