import Foundation
import NIOConcurrencyHelpers
import HBONE
import MeshIdentity
import NIOCore
import NIOPosix
import MeshTestSupport
import Testing

@Suite("HBONE CONNECT status codes over real sockets")
struct StatusTests {
    @Test("200: an allowed CONNECT to a live upstream echoes bytes and carries forwarded, baggage and traceparent")
    func connectAllowed() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let client = try harness.client()
        let stream = try await client.openStream(harness.request(to: upstream.address, source: "127.1.2.3:4567"))
        let echoed = try await stream.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "hello through HBONE"))
            outbound.finish()
            return try await readAll(inbound)
        }
        #expect(String(buffer: echoed) == "hello through HBONE")
        let request = try #require(harness.handler.last)
        #expect(request.peerID == harness.pki.clientID)
        #expect(request.authority == (try HBONEAuthority(upstream.address)))
        #expect(request.forwarding.source == "127.1.2.3:4567")
        #expect(request.forwarding.baggage == "k8s.namespace.name=default")
        #expect(request.forwarding.traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        #expect(await eventually { harness.metrics.snapshot.closed.contains { $0.status == 200 && $0.bytesToDestination == 19 && $0.bytesFromDestination == 19 } })
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("401: a denied CONNECT is a typed error carrying the status")
    func denied() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness(handler: RecordingInboundHandler(authorize: { _ in .deny(reason: "no policy allows client") }))
        let client = try harness.client()
        let request = harness.request(to: upstream.address)
        await #expect(throws: HBONEError.connectRejected(status: 401, authority: request.authority.description)) {
            _ = try await client.openStream(request)
        }
        #expect(harness.metrics.snapshot.closed.map(\.responseFlag) == [.denied])
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("503: an unknown destination")
    func unknownDestination() async throws {
        let harness = try await HBONEHarness(handler: RecordingInboundHandler(resolve: { _ in nil }))
        let client = try harness.client()
        let request = harness.request(to: try SocketAddress(ipAddress: "127.0.0.1", port: 9))
        do {
            _ = try await client.openStream(request)
            Issue.record("expected 503")
        } catch let error as HBONEError {
            #expect(error.status == 503)
        }
        #expect(harness.metrics.snapshot.closed.map(\.responseFlag) == [.noRoute])
        await client.close()
        await harness.server.shutdown()
    }

    @Test("503: the upstream connect fails")
    func upstreamConnectFails() async throws {
        let reserved = try ReservedPort()
        let port = reserved.port
        let harness = try await HBONEHarness()
        let client = try harness.client()
        await #expect(throws: HBONEError.connectRejected(status: 503, authority: "127.0.0.1:\(port)")) {
            _ = try await client.openStream(harness.request(to: try SocketAddress(ipAddress: "127.0.0.1", port: port)))
        }
        #expect(harness.metrics.snapshot.closed.map(\.responseFlag) == [.upstreamConnectionFailure])
        await client.close()
        await harness.server.shutdown()
        withExtendedLifetime(reserved) {}
    }

    @Test("400: a non-CONNECT method", arguments: ["GET", "POST"])
    func nonConnect(method: String) async throws {
        let harness = try await HBONEHarness()
        let status = try await RawHTTP2Client.status(
            of: [(":method", method), (":scheme", "https"), (":path", "/"), (":authority", "127.0.0.1:80")],
            to: harness.address, tls: harness.pki.tls(harness.pki.clientID), expect: harness.pki.serverID
        )
        #expect(status == 400)
        #expect(harness.handler.requests.withLockedValue { $0.isEmpty })
        await harness.server.shutdown()
    }

    @Test("400: a bad authority", arguments: ["no-port", "127.0.0.1:0", "127.0.0.1:70000", "host_with_%:80", "[::1:80", "a:b:c"])
    func badAuthority(authority: String) async throws {
        let harness = try await HBONEHarness()
        let status = try await RawHTTP2Client.status(
            of: [(":method", "CONNECT"), (":authority", authority)],
            to: harness.address, tls: harness.pki.tls(harness.pki.clientID), expect: harness.pki.serverID
        )
        #expect(status == 400)
        await harness.server.shutdown()
    }

    @Test("a client from another trust domain is refused during the handshake, and the refusal is counted")
    func foreignTrustDomain() async throws {
        let harness = try await HBONEHarness()
        let foreignCA = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("other.org"))
        let foreignID = try SPIFFEID("spiffe://other.org/ns/default/sa/client")
        var bundles = harness.pki.bundles.current
        bundles.insert(foreignCA.trustBundle)
        let tls = MeshTLS(svids: SVIDSource(svid: try foreignCA.issueSVID(for: foreignID)), bundles: TrustBundleStore(bundles))
        let client = HBONEClient(tls: tls, configuration: TestConfig.client())
        let upstream = try await TCPUpstream.echo()
        await #expect(throws: (any Error).self) {
            _ = try await client.openStream(harness.request(to: upstream.address))
        }
        #expect(harness.handler.requests.withLockedValue { $0.isEmpty })
        #expect(await eventually { !harness.metrics.snapshot.handshakeFailures.isEmpty },
                "the handshake failure is reported: \(harness.metrics.snapshot.handshakeFailures)")
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("the client refuses a server that is not one of the expected identities")
    func unexpectedServer() async throws {
        let harness = try await HBONEHarness()
        let client = try harness.client()
        let upstream = try await TCPUpstream.echo()
        var request = harness.request(to: upstream.address)
        request.expectedIdentities = [try SPIFFEID("spiffe://example.org/ns/default/sa/someone-else")]
        await #expect(throws: SPIFFEAuthorizationError.self) {
            _ = try await client.openStream(request)
        }
        #expect(harness.handler.requests.withLockedValue { $0.isEmpty })
        await client.close()
        await harness.server.shutdown()
        await upstream.close()
    }
}

@Suite("HBONE authority and forwarded parsing")
struct AuthorityTests {
    @Test("valid authorities", arguments: [
        ("10.0.0.1:8080", "10.0.0.1", 8080),
        ("[fd00::1]:443", "fd00::1", 443),
        ("echo.default.svc.cluster.local:80", "echo.default.svc.cluster.local", 80),
    ])
    func valid(input: String, host: String, port: Int) throws {
        let authority = try HBONEAuthority(parsing: input)
        #expect(authority.host == host)
        #expect(authority.port == port)
        #expect(authority.description == input)
    }

    // The last three are non-ASCII: a prepended mark (U+0600) that joins the colon into one
    // Character, a combining accent on the colon, and non-ASCII digits.
    @Test("invalid authorities", arguments: ["", ":80", "host:", "host:x", "fd00::1:80", "[fd00::1]", "[nothex]:80", "h/st:80", "host:080000",
                                             "a\u{600}:80", "host:\u{301}80", "host:\u{661}\u{662}"])
    func invalid(input: String) {
        #expect(throws: HBONEError.invalidAuthority(input)) { try HBONEAuthority(parsing: input) }
    }

    @Test("forwarded for=")
    func forwarded() {
        #expect(HBONEForwarding.parseForwardedFor("for=\"10.0.0.1:5000\"") == "10.0.0.1:5000")
        #expect(HBONEForwarding.parseForwardedFor("proto=https; for=10.0.0.1:5000") == "10.0.0.1:5000")
        #expect(HBONEForwarding.parseForwardedFor("for=\"[fd00::1]:80\", for=1.1.1.1") == "[fd00::1]:80")
        #expect(HBONEForwarding.parseForwardedFor("by=x") == nil)
        #expect(HBONEForwarding(source: "1.2.3.4:5").forwardedHeader == "for=\"1.2.3.4:5\"")
    }
}
