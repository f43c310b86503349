import Foundation
import NIOConcurrencyHelpers
import HBONE
import MeshIdentity
import NIOCore
import Testing
import MeshTestSupport

@Suite("HBONE interop with peers this project did not write", .serialized)
struct HBONEInteropTests {
    /// Starts `hbone_server.py` (padding every third DATA frame with `pad`) and returns it with its port.
    private func pythonServer(_ files: PEMFiles, pad: Bool = false) async throws -> (PeerProcess, Int) {
        let server = try PeerProcess(try #require(Interop.python), [
            Interop.script("hbone_server.py"), "--cert", files.cert("server"), "--key", files.key("server"), "--ca", files.ca,
        ] + (pad ? ["--pad"] : []))
        guard await server.waitFor("listening "),
              let port = server.text.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }).flatMap({ Int($0.dropFirst(10)) })
        else {
            server.stop()
            throw PythonServerDidNotStart(output: server.text)
        }
        return (server, port)
    }

    struct PythonServerDidNotStart: Error { var output: String }

    @Test("the interop peers are present when CI=true")
    func peersPresentInCI() {
        if Interop.isCI {
            #expect(Interop.python != nil, "CI needs the interop venv (scripts/test creates it)")
            #expect(Interop.openssl != nil, "CI needs openssl")
        }
    }

    private func pythonClient(_ harness: HBONEHarness, files: PEMFiles, authority: String, method: String = "CONNECT", early: Bool = false, extra: [String] = []) async throws -> Interop.Output {
        try await Interop.run(try #require(Interop.python), [
            Interop.script("hbone_client.py"),
            "--connect", "127.0.0.1:\(harness.address.port!)",
            "--cert", files.cert("client"), "--key", files.key("client"), "--ca", files.ca,
            "--expect-id", harness.pki.serverID.description,
            "--authority", authority, "--method", method,
        ] + (early ? ["--early", "--send", "early bytes and FIN"] : []) + extra)
    }

    @Test("DATA and END_STREAM sent right behind the CONNECT (before the 200) reach the upstream", .enabled(if: Interop.python != nil, "needs the interop venv (.venv or MESH_INTEROP_PYTHON)"))
    func earlyData() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let files = try PEMFiles(pki: harness.pki, ids: ["client": harness.pki.clientID])
        defer { files.remove() }
        let output = try await pythonClient(harness, files: files, authority: "127.0.0.1:\(upstream.port)", early: true)
        #expect(output.stdout.contains("status 200"), "\(output.combined)")
        #expect(output.stdout.contains("echo early bytes and FIN"), "\(output.combined)")
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("Python h2 client against our server: 200 with echo, 401, 503, 400", .enabled(if: Interop.python != nil, "needs the interop venv (.venv or MESH_INTEROP_PYTHON)"))
    func pythonClientAgainstServer() async throws {
        let upstream = try await TCPUpstream.echo()
        let denied = try SPIFFEID("spiffe://example.org/ns/default/sa/denied")
        let harness = try await HBONEHarness(handler: RecordingInboundHandler(
            resolve: { $0.authority.port == 9 ? nil : $0.authority.socketAddress.map { HBONEUpstream(address: $0) } },
            authorize: { $0.authority.host == "127.0.0.2" ? .deny(reason: "denied by test policy") : .allow }
        ))
        let files = try PEMFiles(pki: harness.pki, ids: ["client": harness.pki.clientID, "denied": denied])
        defer { files.remove() }

        let ok = try await pythonClient(harness, files: files, authority: "127.0.0.1:\(upstream.port)")
        #expect(ok.status == 0, "\(ok.combined)")
        #expect(ok.stdout.contains("peer \(harness.pki.serverID)"))
        #expect(ok.stdout.contains("status 200"))
        #expect(ok.stdout.contains("echo hello from python h2"))
        let request = try #require(harness.handler.last)
        #expect(request.peerID == harness.pki.clientID)
        #expect(request.forwarding.source == "192.0.2.10:41000")
        #expect(request.forwarding.baggage == "k8s.namespace.name=python")
        #expect(request.forwarding.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

        #expect(try await pythonClient(harness, files: files, authority: "127.0.0.2:\(upstream.port)").stdout.contains("status 401"))
        #expect(try await pythonClient(harness, files: files, authority: "127.0.0.1:9").stdout.contains("status 503"))
        let refused = try ReservedPort()
        #expect(try await pythonClient(harness, files: files, authority: "127.0.0.1:\(refused.port)").stdout.contains("status 503"))
        withExtendedLifetime(refused) {}
        #expect(try await pythonClient(harness, files: files, authority: "127.0.0.1:80", method: "GET").stdout.contains("status 400"))
        #expect(try await pythonClient(harness, files: files, authority: "not-an-authority").stdout.contains("status 400"))
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("Python h2 client moves 8 MiB through our server within h2's 64 KiB windows, every third frame padded", .enabled(if: Interop.python != nil, "needs the interop venv (.venv or MESH_INTEROP_PYTHON)"))
    func pythonClientBulk() async throws {
        let upstream = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let files = try PEMFiles(pki: harness.pki, ids: ["client": harness.pki.clientID])
        defer { files.remove() }
        let total = 8 << 20
        let output = try await pythonClient(harness, files: files, authority: "127.0.0.1:\(upstream.port)", extra: ["--bulk", "\(total)"])
        // h2 raises (and the script fails) on any frame beyond the windows it advertised.
        #expect(output.status == 0, "\(output.combined)")
        let line = try #require(output.stdout.split(separator: "\n").first { $0.hasPrefix("bulk ") }, "\(output.combined)")
        let fields = line.split(separator: " ")
        #expect(fields.count == 5 && fields[1] == "\(total)" && fields[2] == fields[3] && fields[4] == "ended", "\(output.combined)")
        await harness.server.shutdown()
        await upstream.close()
    }

    @Test("malformed HTTP/2 from a Python peer: garbage for a preface, padding longer than its frame, DATA beyond the window; the server ends each connection and keeps serving", .enabled(if: Interop.python != nil, "needs the interop venv (.venv or MESH_INTEROP_PYTHON)"))
    func malformedHTTP2() async throws {
        let echo = try await TCPUpstream.echo()
        let stalled = try await TCPUpstream { NeverReadingHandler() }
        let harness = try await HBONEHarness()
        let files = try PEMFiles(pki: harness.pki, ids: ["client": harness.pki.clientID])
        defer { files.remove() }
        let preface = try await pythonClient(harness, files: files, authority: "127.0.0.1:\(echo.port)", extra: ["--violate", "preface"])
        #expect(preface.stdout.contains("violation goaway 1") || preface.stdout.contains("violation closed"), "\(preface.combined)")
        // PROTOCOL_ERROR (1) for the padding, FLOW_CONTROL_ERROR (3) for the window: the data path's GOAWAYs.
        let padding = try await pythonClient(harness, files: files, authority: "127.0.0.1:\(echo.port)", extra: ["--violate", "padding"])
        #expect(padding.stdout.contains("violation goaway 1"), "\(padding.combined)")
        let window = try await pythonClient(harness, files: files, authority: "127.0.0.1:\(stalled.port)", extra: ["--violate", "window"])
        #expect(window.stdout.contains("violation goaway 3"), "\(window.combined)")
        #expect(await eventually { harness.server.connectionCount == 0 }, "every offending connection is closed")
        let fine = try await pythonClient(harness, files: files, authority: "127.0.0.1:\(echo.port)")
        #expect(fine.stdout.contains("echo hello from python h2"), "\(fine.combined)")
        await harness.server.shutdown()
        await echo.close()
        await stalled.close()
    }

    @Test("floods from an authenticated peer (rapid reset, CONTINUATION) end in a GOAWAY long before they are through, while another peer's tunnels carry on", .enabled(if: Interop.python != nil, "needs the interop venv (.venv or MESH_INTEROP_PYTHON)"))
    func floodsFromAuthenticatedPeer() async throws {
        let echo = try await TCPUpstream.echo()
        let harness = try await HBONEHarness()
        let files = try PEMFiles(pki: harness.pki, ids: ["client": harness.pki.clientID])
        defer { files.remove() }
        let honestClient = try harness.client()
        // ENHANCE_YOUR_CALM (11) for too many resets; for the endless header block, PROTOCOL_ERROR (1,
        // block too large) or ENHANCE_YOUR_CALM (too many CONTINUATION frames), whichever limit comes first.
        for (mode, codes) in [("rapid-reset", [11]), ("continuation", [1, 11])] {
            let flooding = NIOLockedValueBox(true)
            async let flood = pythonClient(harness, files: files, authority: "127.0.0.1:\(echo.port)", extra: ["--violate", mode])
            async let honest: Int = {
                // A second peer (its own connection) keeps tunnelling while the flood runs, and once after.
                var tunnels = 0
                repeat {
                    let (sent, echoed) = try await spliceBulk(client: honestClient, request: harness.request(to: echo.address), bytes: 256 << 10)
                    #expect(echoed == sent, "\(mode): a tunnel of the other peer lost bytes")
                    tunnels += 1
                } while flooding.withLockedValue({ $0 }) || tunnels < 2
                return tunnels
            }()
            let output = try await flood
            flooding.withLockedValue { $0 = false }
            #expect(try await honest >= 2)
            let numbers = { (prefix: String) in
                output.stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }?.split(separator: " ").compactMap { Int($0) } ?? []
            }
            let goaway = numbers("violation goaway ")  // [code, last stream]
            #expect(goaway.count == 2 && codes.contains(goaway[0]), "\(mode): \(output.combined)")
            if mode == "rapid-reset" {
                // 10,000 streams opened and reset; the server stops processing after a few hundred.
                #expect(goaway.count == 2 && goaway[1] < 2_000, "\(mode): the server processed streams up to \(goaway.last ?? -1): \(output.combined)")
            } else {
                // 64 MiB of header block: the server closes long before it is through.
                let sent = numbers("flood sent ")
                #expect(sent.count == 2 && sent[0] < sent[1], "\(mode): the server took the whole flood: \(output.combined)")
            }
        }
        await honestClient.close()
        #expect(await eventually { harness.server.connectionCount == 0 }, "the flooding connections are closed")
        await harness.server.shutdown()
        await echo.close()
    }

    @Test("our spliced tunnel moves 8 MiB each way through a Python h2 server that pads frames and enforces its windows", .enabled(if: Interop.python != nil, "needs the interop venv (.venv or MESH_INTEROP_PYTHON)"))
    func tunnelBulkAgainstPythonServer() async throws {
        let pki = try ServerClientPKI()
        let files = try PEMFiles(pki: pki, ids: ["server": pki.serverID])
        defer { files.remove() }
        let (server, port) = try await pythonServer(files, pad: true)
        defer { server.stop() }
        let client = HBONEClient(tls: try pki.tls(pki.clientID), configuration: TestConfig.client())
        let request = HBONEConnectRequest(
            authority: HBONEAuthority(host: "10.0.0.7", port: 8080),
            peer: try SocketAddress(ipAddress: "127.0.0.1", port: port),
            expectedIdentities: [pki.serverID],
            forwarding: HBONEForwarding(source: "127.0.0.1:5555")
        )
        let (sent, echoed) = try await spliceBulk(client: client, request: request, bytes: 8 << 20)
        #expect(sent.count == 8 << 20)
        #expect(echoed == sent, "the echo through the Python server differs from what was sent: \(echoed.count) of \(sent.count) bytes")
        await client.close()
        #expect(await server.waitFor("done"), "\(server.text)")
        #expect(!server.text.contains("connection error"), "\(server.text)")
    }

    @Test("our client against a Python h2 HBONE server", .enabled(if: Interop.python != nil, "needs the interop venv (.venv or MESH_INTEROP_PYTHON)"))
    func clientAgainstPythonServer() async throws {
        let pki = try ServerClientPKI()
        let files = try PEMFiles(pki: pki, ids: ["server": pki.serverID])
        defer { files.remove() }
        let (server, port) = try await pythonServer(files)
        defer { server.stop() }
        let client = HBONEClient(tls: try pki.tls(pki.clientID), configuration: TestConfig.client())
        let request = HBONEConnectRequest(
            authority: HBONEAuthority(host: "10.0.0.7", port: 8080),
            peer: try SocketAddress(ipAddress: "127.0.0.1", port: port),
            expectedIdentities: [pki.serverID],
            forwarding: HBONEForwarding(source: "127.0.0.1:5555", baggage: "k8s.namespace.name=default", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        )
        let echoed = try await client.openStream(request).executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "swift to python"))
            outbound.finish()
            return String(buffer: try await readAll(inbound))
        }
        #expect(echoed == "swift to python")
        await client.close()
        #expect(await server.waitFor("done"))
        #expect(server.text.contains("client \(pki.clientID) alpn h2 TLSv1.3"))
        #expect(server.text.contains("request method=CONNECT authority=10.0.0.7:8080 forwarded=for=\"127.0.0.1:5555\" baggage=k8s.namespace.name=default traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
    }

    @Test("openssl s_client -alpn h2 negotiates h2 and TLS 1.3 with a client SVID", .enabled(if: Interop.openssl != nil, "needs openssl"))
    func opensslClient() async throws {
        let harness = try await HBONEHarness()
        let files = try PEMFiles(pki: harness.pki, ids: ["client": harness.pki.clientID])
        defer { files.remove() }
        let output = try await Interop.run(try #require(Interop.openssl), [
            "s_client", "-connect", "127.0.0.1:\(harness.address.port!)", "-alpn", "h2", "-noservername",
            "-cert", files.cert("client"), "-key", files.key("client"), "-CAfile", files.ca, "-verify_return_error",
        ], stdin: "")
        #expect(output.combined.contains("ALPN protocol: h2"), "\(output.combined)")
        #expect(output.combined.contains("TLSv1.3"))
        #expect(output.combined.contains("Verify return code: 0 (ok)"))
        await harness.server.shutdown()
    }
}
