import Foundation
import NIOConcurrencyHelpers
import HBONE
import NIOCore
import NIOPosix
import Testing
import MeshTestSupport

@Suite("HBONEClient.tunnel splices accepted sockets")
struct TunnelTests {
    @Test("a plain TCP connection is tunnelled to the upstream and back, with a prelude first")
    func tunnel() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let client = try harness.client()
        let request = harness.request(to: upstream.address)
        let tunnelErrors = NIOLockedValueBox<[String]>([])
        // A local listener whose accepted sockets are handed to client.tunnel, as a SOCKS5 or redirect listener does.
        let listener = try await spliceListener { channel in
            do { try await client.tunnel(request, splicingWith: channel, prelude: ByteBuffer(string: "OK ")) } catch { tunnelErrors.withLockedValue { $0.append("\(error)") } }
        }
        let port = listener.localAddress!.port!
        let output = try await sendThenReadToEnd(port: port, "spliced bytes")
        #expect(output.stdout == "OK spliced bytes\n", "\(output.combined)")
        #expect(tunnelErrors.withLockedValue { $0 }.isEmpty)
        try await listener.close()
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }
}


