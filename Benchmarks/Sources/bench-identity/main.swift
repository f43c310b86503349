// bench-identity: full SPIFFE mTLS handshakes per second (Swift client and
// server on loopback) against `openssl s_time` / `openssl s_server` with the
// same ECDSA P-256 keys and TLS 1.3, in the same run; and SVID issuance rate.
import Foundation
import MeshIdentity
import NIOCore
import NIOPosix
import NIOSSL

let seconds = Double(CommandLine.arguments.dropFirst().first ?? "5") ?? 5

func check(_ condition: Bool, _ message: String) {
    if !condition {
        FileHandle.standardError.write(Data("bench-identity: \(message)\n".utf8))
        exit(1)
    }
}

// MARK: PKI on disk (for openssl) and in memory (for Swift)

let trustDomain = try TrustDomain("bench.mesh")
let ca = try CertificateAuthority.selfSigned(trustDomain: trustDomain)
let serverID = try SPIFFEID("spiffe://bench.mesh/ns/bench/sa/server")
let clientID = try SPIFFEID("spiffe://bench.mesh/ns/bench/sa/client")
let serverSVID = try ca.issueSVID(for: serverID)
let clientSVID = try ca.issueSVID(for: clientID)
let work = NSTemporaryDirectory() + "bench-identity-\(getpid())"
try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: work) }
try serverSVID.chainPEM().write(toFile: work + "/server.pem", atomically: true, encoding: .utf8)
try serverSVID.privateKeyPEM.write(toFile: work + "/server.key", atomically: true, encoding: .utf8)
try clientSVID.chainPEM().write(toFile: work + "/client.pem", atomically: true, encoding: .utf8)
try clientSVID.privateKeyPEM.write(toFile: work + "/client.key", atomically: true, encoding: .utf8)
try ca.trustBundle.authoritiesPEM().write(toFile: work + "/bundle.pem", atomically: true, encoding: .utf8)
let bundles = TrustBundleStore(ca.trustBundle)

// MARK: Swift server

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let serverTLS = MeshTLS(svids: SVIDSource(svid: serverSVID), bundles: bundles, configuration: MeshTLSConfiguration(serverAuthorizer: .exactly(clientID)))
let server = try await ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .serverChannelOption(.backlog, value: 512)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers(serverTLS.makeServerHandlers())
        }
    }
    .bind(host: "127.0.0.1", port: 0)
    .get()
let swiftPort = server.localAddress!.port!

// MARK: openssl s_server

func freePort() throws -> Int {
    let probe = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
    let port = probe.localAddress!.port!
    try probe.close().wait()
    return port
}
let opensslPort = try freePort()
let sServer = Process()
// Processes spawned here inherit a signal mask that blocks SIGTERM, so the server runs under
// `timeout -s KILL` (its own process group, killed below or at the deadline if we crash).
sServer.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
sServer.arguments = [
    "-s", "KILL", "\(Int(seconds) * 3 + 60)", "/usr/bin/openssl", "s_server", "-accept", "127.0.0.1:\(opensslPort)", "-tls1_3", "-cert", work + "/server.pem", "-key", work + "/server.key",
    "-CAfile", work + "/bundle.pem", "-Verify", "1", "-naccept", "1000000", "-quiet",
]
sServer.standardInput = Pipe()
sServer.standardOutput = FileHandle.nullDevice
sServer.standardError = FileHandle.nullDevice
try sServer.run()
try await Task.sleep(nanoseconds: 500_000_000)

// MARK: measurements

/// Sequential full handshakes from a Swift MeshTLS client for `seconds`.
func swiftHandshakes(port: Int, expect: SPIFFEAuthorizer) async throws -> (count: Int, elapsed: Double) {
    let clientTLS = MeshTLS(svids: SVIDSource(svid: clientSVID), bundles: bundles)
    let start = Date()
    var count = 0
    while Date().timeIntervalSince(start) < seconds {
        let outcome = clientGroup.any().makePromise(of: VerifiedPeer.self)
        let channel = try await ClientBootstrap(group: clientGroup)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try clientTLS.addClientHandlers(to: channel, authorizer: expect).cascade(to: outcome)
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        let peer = try await outcome.futureResult.get().peerID
        check(peer == serverID, "unexpected server identity \(peer)")
        // The peer may already have closed (openssl s_server ends a session when its stdin is empty).
        try? await channel.close()
        count += 1
    }
    return (count, Date().timeIntervalSince(start))
}

/// `openssl s_time` against openssl s_server, with a client certificate, new sessions only.
func opensslHandshakes() throws -> (count: Int, elapsed: Double) {
    let sTime = Process()
    sTime.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    sTime.arguments = [
        "s_time", "-connect", "127.0.0.1:\(opensslPort)", "-new", "-time", "\(Int(seconds))", "-tls1_3",
        "-cert", work + "/client.pem", "-key", work + "/client.key", "-CAfile", work + "/bundle.pem",
    ]
    let pipe = Pipe()
    sTime.standardOutput = pipe
    sTime.standardError = FileHandle.nullDevice
    let started = Date()
    try sTime.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    sTime.waitUntilExit()
    // s_time's own "real seconds" are whole seconds; time the run here instead.
    let elapsed = Date().timeIntervalSince(started)
    // "1234 connections in 5.01s; 246.31 connections/user sec ..." then "1234 connections in 6 real seconds, ..."
    guard let line = output.split(separator: "\n").first(where: { $0.contains("connections in") && $0.contains("real seconds") }) else {
        check(false, "cannot parse s_time output:\n\(output)")
        return (0, 1)
    }
    let count = Int(line.split(separator: " ")[0]) ?? 0
    return (count, elapsed)
}

func issuanceRate() throws -> Double {
    let start = Date()
    var count = 0
    while Date().timeIntervalSince(start) < seconds {
        _ = try ca.issueSVID(for: clientID, ttl: 3600)
        count += 1
    }
    return Double(count) / Date().timeIntervalSince(start)
}

let openssl = try opensslHandshakes()
let swift = try await swiftHandshakes(port: swiftPort, expect: .exactly(serverID))
let swiftToOpenSSL = try await swiftHandshakes(port: opensslPort, expect: .exactly(serverID))
let issued = try issuanceRate()

let opensslRate = Double(openssl.count) / openssl.elapsed
let swiftRate = Double(swift.count) / swift.elapsed
let mixedRate = Double(swiftToOpenSSL.count) / swiftToOpenSSL.elapsed
func fmt(_ value: Double) -> String { String(format: "%.0f", value) }
print("mTLS handshakes/s, TLS 1.3, ECDSA P-256, client certificate, sequential on 127.0.0.1, \(Int(seconds)) s each:")
print("  openssl s_time -> openssl s_server (baseline) \(fmt(opensslRate))/s (\(openssl.count) in \(String(format: "%.2f", openssl.elapsed)) s)")
print("  MeshTLS client -> MeshTLS server              \(fmt(swiftRate))/s  ratio \(String(format: "%.2f", swiftRate / opensslRate))x baseline")
print("  MeshTLS client -> openssl s_server            \(fmt(mixedRate))/s  ratio \(String(format: "%.2f", mixedRate / opensslRate))x baseline")
print("SVID issuance (new P-256 key + signed leaf):     \(fmt(issued))/s")
try await server.close()
try await group.shutdownGracefully()
try await clientGroup.shutdownGracefully()
kill(-sServer.processIdentifier, SIGKILL)  // the whole process group: timeout and openssl
sServer.waitUntilExit()
