import Foundation
import MeshProto
import MeshTestSupport
import NIOCore
import NodeProxy
import Testing

/// The ztunnel binary as a ZDS client of a node agent played by the test: bad
/// enrollment messages are refused with a reason in the Ack, the pod is not
/// captured, other pods are unaffected, and no descriptor leaks.
@Suite("ZDS enrollment against the ztunnel binary", .serialized,
       .enabled(if: getuid() == 0 || Interop.isCI, "needs root (network namespaces)"))
struct ZDSBadInputTests {
    static let ztunnel = Interop.packageRoot + "/.build/debug/ztunnel"

    @Test("malformed messages, a descriptor that is no namespace, a taken 15001 and a vanished namespace: refused or removed cleanly, nothing leaked")
    func badEnrollments() async throws {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let good = "swz-good-\(suffix)", busy = "swz-busy-\(suffix)"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zds-\(suffix)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer {
            _ = try? Interop.runBlocking("/usr/bin/env", ["ip", "netns", "del", good])
            _ = try? Interop.runBlocking("/usr/bin/env", ["ip", "netns", "del", busy])
            try? FileManager.default.removeItem(atPath: directory)
        }
        for (name, address) in [(good, "10.250.0.2"), (busy, "10.250.0.3")] {
            for argv in [["ip", "netns", "add", name], ["ip", "-n", name, "link", "set", "lo", "up"],
                         ["ip", "-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                         ["ip", "-n", name, "addr", "add", address + "/32", "dev", "v0"], ["ip", "-n", name, "link", "set", "v0", "up"]] {
                let result = try Interop.runBlocking("/usr/bin/env", argv)
                #expect(result.status == 0, "\(argv.joined(separator: " ")): \(result.combined)")
            }
        }
        // An application already listening on 15001 in the busy pod.
        let squatter = try PeerProcess("/usr/bin/env", ["ip", "netns", "exec", busy, "python3", "-c",
                                                        "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',15001))\ns.listen()\nprint('listening',flush=True)\ntime.sleep(600)"])
        defer { squatter.stop() }
        #expect(await squatter.waitFor("listening"))

        let pki = try ServerClientPKI()
        let svid = try pki.ca.issueSVID(for: pki.clientID)
        try svid.chainPEM().write(toFile: directory + "/svid.pem", atomically: true, encoding: .utf8)
        try svid.privateKeyPEM.write(toFile: directory + "/svid.key", atomically: true, encoding: .utf8)
        try pki.ca.trustBundle.authoritiesPEM().write(toFile: directory + "/bundle.pem", atomically: true, encoding: .utf8)
        try "workloads: []\n".write(toFile: directory + "/mesh.yaml", atomically: true, encoding: .utf8)

        let listener = try ZDSListener(path: directory + "/zds.sock")
        defer { listener.close() }
        let ztunnel = try PeerProcess(Self.ztunnel, [
            "--config", directory + "/mesh.yaml", "--node", "node-a", "--svid", directory, "--zds-socket", directory + "/zds.sock",
            "--hbone-listen", "127.0.0.1:0", "--socks5", "127.0.0.1:0", "--readiness", "127.0.0.1:0",
            "--metrics-address", "127.0.0.1:0", "--admin-address", "127.0.0.1:0",
        ])
        defer { ztunnel.stop() }
        let connection = try await Interop.onThread { try listener.accept() }
        defer { connection.close() }
        let (hello, _) = try await Interop.onThread { try connection.receive(Istio_Workload_Zds_ZdsHello.self) }
        #expect(hello.version == .v1)
        #expect(await ztunnel.waitFor("ztunnel ready"), "\(ztunnel.text)")
        guard let pid = ztunnel.pid else { throw ZDSTestError("ztunnel has no pid") }
        let baseline = openDescriptors(pid)

        /// Sends a request (or raw bytes) with an optional descriptor; returns the Ack's error ("" when applied).
        func exchange(_ request: Istio_Workload_Zds_WorkloadRequest? = nil, raw: [UInt8]? = nil, passing path: String? = nil) async throws -> String {
            try await Interop.onThread {
                let descriptor = path.map { open($0, O_RDONLY | O_CLOEXEC) }
                defer { if let descriptor { close(descriptor) } }
                if let raw { try connection.send(bytes: raw, passing: descriptor) } else if let request { try connection.send(request, passing: descriptor) }
                let (response, _) = try connection.receive(Istio_Workload_Zds_WorkloadResponse.self)
                return response.ack.error
            }
        }
        func add(_ uid: String, name: String) -> Istio_Workload_Zds_WorkloadRequest {
            var request = Istio_Workload_Zds_WorkloadRequest()
            request.add.uid = uid
            request.add.workloadInfo.name = name
            request.add.workloadInfo.namespace = "test"
            request.add.workloadInfo.serviceAccount = "default"
            return request
        }

        let garbage = try await exchange(raw: [0xFF, 0xFF, 0xFF, 0x01, 0x02])
        #expect(garbage.contains("malformed"), "garbage: \(garbage)")
        let noDescriptor = try await exchange(add("uid-none", name: "none"))
        #expect(noDescriptor.contains("without a network namespace descriptor"), "\(noDescriptor)")
        let notNamespace = try await exchange(add("uid-file", name: "file"), passing: directory + "/mesh.yaml")
        #expect(notNamespace.contains("not a network namespace"), "\(notNamespace)")
        let taken = try await exchange(add("uid-busy", name: "busy"), passing: "/var/run/netns/\(busy)")
        #expect(taken.contains("15001") && taken.contains("in use"), "\(taken)")
        #expect(try await listening(busy) == [15001], "the busy pod keeps only its application's socket")

        let added = try await exchange(add("uid-good", name: "good"), passing: "/var/run/netns/\(good)")
        #expect(added == "", "good pod: \(added)")
        #expect(try await listening(good) == [15001, 15006, 15008, 15053], "the good pod's listeners (and DNS on loopback) are open in its namespace")
        // One outbound and one plaintext listener per event loop of ztunnel's (NIO's singleton group: System.coreCount loops).
        let perPort = Dictionary(try await listeners(good).map { ($0, 1) }, uniquingKeysWith: +)
        #expect(perPort == [15001: System.coreCount, 15006: System.coreCount, 15008: 1, 15053: 1], "\(perPort)")
        var keepUnknown = Istio_Workload_Zds_WorkloadRequest()
        keepUnknown.keep.uid = "uid-unknown"
        #expect(try await exchange(keepUnknown).contains("not captured"))
        var snapshot = Istio_Workload_Zds_WorkloadRequest()
        snapshot.snapshotSent = Istio_Workload_Zds_SnapshotSent()
        #expect(try await exchange(snapshot) == "")
        #expect(try await listening(good) == [15001, 15006, 15008, 15053], "the snapshot kept the good pod")

        // A connection accepted in the pod (to its HBONE listener, handshake not begun) ends when the pod is removed.
        let holder = try PeerProcess("/usr/bin/env", ["ip", "netns", "exec", good, "python3", "-u", "-c",
                                                      "import socket\ns=socket.create_connection(('127.0.0.1',15008))\nprint('connected')\n"
                                                      + "try:\n  d=s.recv(1)\nexcept OSError:\n  d=b''\nprint('ended' if not d else 'data')"])
        defer { holder.stop() }
        #expect(await holder.waitFor("connected"), "\(holder.text)")

        // The namespace disappears while captured: ztunnel's descriptor keeps it alive until the pod is removed.
        _ = try await Interop.run("/usr/bin/env", ["ip", "netns", "del", good])
        var delete = Istio_Workload_Zds_WorkloadRequest()
        delete.del.uid = "uid-good"
        #expect(try await exchange(delete) == "")
        #expect(await eventually { openDescriptors(pid) == baseline }, "ztunnel's descriptors back to \(baseline): now \(openDescriptors(pid))")
        #expect(ztunnel.text.contains("pod released"), "\(ztunnel.text)")
        #expect(await holder.waitFor("ended"), "the pod's open connection was ended with it: \(holder.text)")
    }

    /// TCP ports listening in a namespace.
    /// The TCP ports listened on in `namespace`, each once (ztunnel holds 15001 and 15006 once per event loop).
    private func listening(_ namespace: String) async throws -> [Int] {
        Set(try await listeners(namespace)).sorted()
    }

    /// The port of each TCP listener in `namespace`.
    private func listeners(_ namespace: String) async throws -> [Int] {
        let output = try await Interop.run("/usr/bin/env", ["ip", "netns", "exec", namespace, "ss", "-Htln"])
        return output.stdout.split(separator: "\n").compactMap { line in
            line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.flatMap { $0.split(separator: ":").last.flatMap { Int($0) } }
        }
    }

    private func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }
}

struct ZDSTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
