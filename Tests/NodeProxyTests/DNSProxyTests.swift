import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import MeshTestSupport
import NIOCore
import NIOPosix
import NodeProxy
import Testing
import XDSClient

/// The mesh the DNS tests resolve against: `echo` in `demo` with one VIP, `multi` in `demo` with two.
private func demoStore() throws -> WorkloadStore {
    try WorkloadStore(WorkloadSnapshot(services: [
        Service(name: "echo", namespace: "demo", hostname: "echo.demo.svc.cluster.local",
                vips: [NetworkAddress(address: "10.96.0.10")], ports: [80: 8080]),
        Service(name: "multi", namespace: "demo", hostname: "multi.demo.svc.cluster.local",
                vips: [NetworkAddress(address: "10.96.0.20"), NetworkAddress(network: "west", address: "10.96.0.21")], ports: [80: 8080]),
    ]))
}

private func makeProxy(upstreams: [SocketAddress] = [], upstreamTimeout: TimeAmount = .seconds(2)) throws -> DNSProxy {
    try DNSProxy(store: demoStore(), upstreams: upstreams, upstreamTimeout: upstreamTimeout, logger: Logger(label: "DNSProxyTests"))
}

/// The bytes of a standard query for `name` (RD set), as a stub resolver sends it.
private func queryBytes(id: UInt16 = 0xbeef, name: String, type: UInt16 = 1, questionCount: UInt16 = 1) -> [UInt8] {
    var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, UInt8(questionCount >> 8), UInt8(questionCount & 0xff), 0, 0, 0, 0, 0, 0]
    for label in name.split(separator: ".") {
        bytes.append(UInt8(label.utf8.count))
        bytes.append(contentsOf: label.utf8)
    }
    bytes += [0, UInt8(type >> 8), UInt8(type & 0xff), 0, 1]
    return bytes
}

/// A header (ID 0xbeef, one question) followed by `question`.
private func withHeader(_ question: [UInt8]) -> [UInt8] {
    [0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0] + question
}

@Suite("DNS message codec")
struct DNSMessageTests {
    @Test("a query is read: ID, RD, name, type and class")
    func parsesQuery() throws {
        let query = try DNSQuery(parsing: queryBytes(name: "Echo.demo.svc.cluster.local", type: 28))
        #expect(query.header.id == 0xbeef)
        #expect(query.header.recursionDesired)
        #expect(!query.header.isResponse)
        #expect(query.question.name == "Echo.demo.svc.cluster.local")
        #expect(query.question.type == .aaaa)
        #expect(query.question.recordClass == 1)
    }

    @Test("an A answer echoes the question (case kept) and names the record by a pointer to it")
    func encodesAnswer() throws {
        let query = try DNSQuery(parsing: queryBytes(name: "ECHO.demo"))
        let response = DNSResponse.encode(answering: query, code: .noError,
                                          answers: [DNSAddressRecord(type: .a, address: [10, 96, 0, 10], ttl: 30)], authoritative: true)
        let header = try DNSHeader(parsing: response)
        #expect(header.id == 0xbeef)
        #expect(header.isResponse)
        #expect(header.recursionDesired)
        #expect(header.flags & 0x0400 != 0)  // AA
        #expect(header.responseCode == 0)
        #expect(header.questionCount == 1 && header.answerCount == 1)
        let question = queryBytes(name: "ECHO.demo")[12...]
        #expect(Array(response[12..<(12 + question.count)]) == Array(question))
        #expect(Array(response.suffix(16)) == [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 96, 0, 10])
    }

    @Test("NXDOMAIN, SERVFAIL and FORMERR carry their codes and the client's ID")
    func encodesErrors() throws {
        let query = try DNSQuery(parsing: queryBytes(id: 7, name: "x.demo.svc.cluster.local"))
        #expect(try DNSHeader(parsing: DNSResponse.encode(answering: query, code: .nameError)).responseCode == 3)
        #expect(try DNSHeader(parsing: DNSResponse.encode(answering: query, code: .serverFailure)).responseCode == 2)
        let formerr = try DNSHeader(parsing: DNSResponse.encode(answeringHeader: query.header, code: .formatError))
        #expect(formerr.responseCode == 1 && formerr.id == 7 && formerr.questionCount == 0)
    }

    @Test("answers beyond the length limit are left out and TC is set")
    func truncatesAnswers() throws {
        let query = try DNSQuery(parsing: queryBytes(name: "many.demo"))
        let records = (0..<100).map { DNSAddressRecord(type: .a, address: [10, 0, 0, UInt8($0)], ttl: 30) }
        let response = DNSResponse.encode(answering: query, code: .noError, answers: records, maxLength: 512)
        let header = try DNSHeader(parsing: response)
        #expect(response.count <= 512)
        #expect(header.truncated)
        #expect(header.answerCount > 0 && header.answerCount < 100)
    }

    @Test("compression pointers are followed and reading resumes after the first one")
    func followsPointer() throws {
        // At 12: "demo" (a name); at 18: "echo" and a pointer back to 12; then type and class.
        let bytes = withHeader([4] + Array("demo".utf8) + [0] + [4] + Array("echo".utf8) + [0xc0, 12, 0, 1, 0, 1])
        var reader = DNSReader(bytes: bytes, offset: 18)
        #expect(try reader.readName().map { String(decoding: $0, as: UTF8.self) } == ["echo", "demo"])
        #expect(reader.offset == 25)
        #expect(try reader.readUInt16() == 1)
        // In a query the question starts at 12, so a pointer can only reach into the header:
        // NSCOUNT 0x0178 reads as the label "x", ARCOUNT's first byte as the root.
        var query = withHeader([4] + Array("echo".utf8) + [0xc0, 8, 0, 28, 0, 1])
        query[8] = 0x01
        query[9] = 0x78
        let parsed = try DNSQuery(parsing: query)
        #expect(parsed.question.name == "echo.x")
        #expect(parsed.question.type == .aaaa)
    }

    @Test("pointer loops are refused with a typed error")
    func pointerLoops() {
        // A pointer to itself.
        #expect(throws: DNSMessageError.pointerLoop(offset: 12)) { try DNSQuery(parsing: withHeader([0xc0, 12, 0, 1, 0, 1])) }
        // A label and a pointer back to that label: each pass would read it again.
        #expect(throws: DNSMessageError.pointerLoop(offset: 14)) { try DNSQuery(parsing: withHeader([1, 0x61, 0xc0, 12, 0, 1, 0, 1])) }
        // A forward pointer.
        #expect(throws: DNSMessageError.pointerLoop(offset: 12)) { try DNSQuery(parsing: withHeader([0xc0, 20, 0, 1, 0, 1, 0, 0, 1, 0x61, 0])) }
    }

    @Test("truncated messages are refused with a typed error, at every cut")
    func truncated() {
        #expect(throws: DNSMessageError.headerTooShort(length: 5)) { try DNSQuery(parsing: [0, 1, 2, 3, 4]) }
        #expect(throws: DNSMessageError.truncated(offset: 12)) { try DNSQuery(parsing: withHeader([10, 0x61, 0x62])) }
        let full = queryBytes(name: "echo.demo.svc.cluster.local")
        for length in 0..<full.count {
            #expect(throws: DNSMessageError.self) { try DNSQuery(parsing: Array(full.prefix(length))) }
        }
        #expect((try? DNSQuery(parsing: full)) != nil)
    }

    @Test("reserved label types, over-long names, question counts other than one and responses are refused")
    func otherMalformed() {
        #expect(throws: DNSMessageError.badLabelLength(0x41, offset: 12)) { try DNSQuery(parsing: withHeader([0x41, 0x61, 0, 0, 1, 0, 1])) }
        #expect(throws: DNSMessageError.badLabelLength(0x80, offset: 12)) { try DNSQuery(parsing: withHeader([0x80, 0, 0, 1, 0, 1])) }
        let long = (0..<5).map { _ in String(repeating: "a", count: 63) }.joined(separator: ".")
        #expect(throws: DNSMessageError.nameTooLong) { try DNSQuery(parsing: queryBytes(name: long)) }
        #expect(throws: DNSMessageError.questionCount(2)) { try DNSQuery(parsing: queryBytes(name: "a.b", questionCount: 2)) }
        #expect(throws: DNSMessageError.questionCount(0)) { try DNSQuery(parsing: queryBytes(name: "a.b", questionCount: 0)) }
        var response = queryBytes(name: "a.b")
        response[2] |= 0x80
        #expect(throws: DNSMessageError.notAQuery) { try DNSQuery(parsing: response) }
    }

    @Test("random and mutated bytes give a query or a typed error, never a crash")
    func randomInput() {
        var generator = SeededGenerator(seed: 0xd15)
        let valid = queryBytes(name: "echo.demo.svc.cluster.local")
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...80, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                if bytes.count >= 6 { bytes[4] = 0; bytes[5] = 1; bytes[2] &= 0x7f }
            } else {
                bytes = valid
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    bytes[Int.random(in: 12..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            }
            do {
                _ = try DNSQuery(parsing: bytes)
            } catch {
                _ = error.description
            }
        }
    }
}

@Suite("DNS proxy decisions")
struct DNSProxyDecisionTests {
    @Test("the four name forms resolve from the service's namespace, any case, trailing dot or not")
    func nameForms() throws {
        let proxy = try makeProxy()
        for name in ["echo.demo.svc.cluster.local", "echo.demo.svc.cluster.local.", "ECHO.Demo.SVC.Cluster.Local", "echo.demo.svc", "echo.demo", "echo", "Echo."] {
            #expect(proxy.answer(DNSQuestion(name: name, type: .a), clientNamespace: "demo") == .addresses(["10.96.0.10"]), "\(name)")
        }
        #expect(proxy.answer(DNSQuestion(name: "multi", type: .a), clientNamespace: "demo") == .addresses(["10.96.0.20", "10.96.0.21"]))
    }

    @Test("a short name resolves only in the client's own namespace; qualified names from anywhere")
    func otherNamespace() throws {
        let proxy = try makeProxy()
        #expect(proxy.answer(DNSQuestion(name: "echo", type: .a), clientNamespace: "other") == .forward)
        #expect(proxy.answer(DNSQuestion(name: "echo.demo", type: .a), clientNamespace: "other") == .addresses(["10.96.0.10"]))
        #expect(proxy.answer(DNSQuestion(name: "echo.demo.svc.cluster.local", type: .a), clientNamespace: "other") == .addresses(["10.96.0.10"]))
    }

    @Test("AAAA and other types for a service are NOERROR without answers; unknown service names NXDOMAIN; the rest forwarded")
    func otherOutcomes() throws {
        let proxy = try makeProxy()
        #expect(proxy.answer(DNSQuestion(name: "echo.demo", type: .aaaa), clientNamespace: "demo") == .noData)
        #expect(proxy.answer(DNSQuestion(name: "echo", type: .txt), clientNamespace: "demo") == .noData)
        #expect(proxy.answer(DNSQuestion(name: "nope.demo.svc.cluster.local", type: .a), clientNamespace: "demo") == .nameError)
        #expect(proxy.answer(DNSQuestion(name: "a.b.c.svc.cluster.local", type: .aaaa), clientNamespace: "demo") == .nameError)
        // The whole cluster zone is answered here: what a search path makes of a full name never leaks upstream.
        #expect(proxy.answer(DNSQuestion(name: "echo.demo.svc.cluster.local.cluster.local", type: .a), clientNamespace: "demo") == .nameError)
        #expect(proxy.answer(DNSQuestion(name: "node.cluster.local", type: .a), clientNamespace: "demo") == .nameError)
        #expect(proxy.answer(DNSQuestion(name: "example.org", type: .a), clientNamespace: "demo") == .forward)
        #expect(proxy.answer(DNSQuestion(name: "nope.demo.svc", type: .a), clientNamespace: "demo") == .forward)
        #expect(proxy.answer(DNSQuestion(name: "www.example.org", type: .a), clientNamespace: "demo") == .forward)
        #expect(proxy.answer(DNSQuestion(name: "", type: .a), clientNamespace: "demo") == .forward)
        #expect(proxy.answer(DNSQuestion(name: "echo.demo", type: .a, recordClass: 3), clientNamespace: "demo") == .forward)
        // A label holding a dot is no service name, even if it reads like one once joined.
        #expect(proxy.answer(DNSQuestion(labels: [Array("echo.demo".utf8)], type: .a), clientNamespace: "demo") == .forward)
    }

    @Test("another domain suffix moves the authoritative zone")
    func domainSuffix() throws {
        let store = try WorkloadStore(WorkloadSnapshot(services: [
            Service(name: "echo", namespace: "demo", hostname: "echo.demo.svc.corp.example", vips: [NetworkAddress(address: "10.1.0.1")]),
        ]))
        let proxy = DNSProxy(store: store, upstreams: [], domainSuffix: "corp.example", logger: Logger(label: "DNSProxyTests"))
        #expect(proxy.answer(DNSQuestion(name: "echo", type: .a), clientNamespace: "demo") == .addresses(["10.1.0.1"]))
        #expect(proxy.answer(DNSQuestion(name: "x.demo.svc.corp.example", type: .a), clientNamespace: "demo") == .nameError)
        #expect(proxy.answer(DNSQuestion(name: "x.demo.svc.cluster.local", type: .a), clientNamespace: "demo") == .forward)
    }
}

private let digAvailable = Interop.isCI || Interop.which("dig") != nil
private var pythonPath: String? { Interop.python ?? Interop.which("python3") }

/// A running proxy on 127.0.0.1 at a free port.
private struct RunningProxy {
    let proxy: DNSProxy
    let channels: [any Channel]
    let port: Int

    static func start(upstreams: [SocketAddress] = [], upstreamTimeout: TimeAmount = .seconds(2), clientNamespace: String = "demo") async throws -> RunningProxy {
        let proxy = try makeProxy(upstreams: upstreams, upstreamTimeout: upstreamTimeout)
        let channels = try await proxy.bind(host: "127.0.0.1", port: 0, clientNamespace: clientNamespace)
        return RunningProxy(proxy: proxy, channels: channels, port: try #require(channels.first?.localAddress?.port))
    }

    /// dig's output for `arguments` against the proxy. The generous timeout bounds a broken proxy; nothing asserts on time.
    func dig(_ arguments: [String]) async throws -> String {
        let dig = try #require(Interop.which("dig"), "dig not installed (apt-get install bind9-dnsutils)")
        let output = try await Interop.run(dig, ["@127.0.0.1", "-p", "\(port)", "+tries=1", "+timeout=15"] + arguments)
        return output.stdout
    }

    func short(_ arguments: [String]) async throws -> [String] {
        try await dig(["+short"] + arguments).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func stop() async {
        for channel in channels { try? await channel.close() }
    }
}

/// Tests/Interop/dns_stub_resolver.py: a UDP DNS server answering every query with
/// A 203.0.113.7 (or, `silent`, never answering) and printing the names it was asked.
private func startUpstream(silent: Bool = false) async throws -> (PeerProcess, SocketAddress) {
    let python = try #require(pythonPath, "python3 not found")
    let peer = try PeerProcess(python, ["-u", Interop.script("dns_stub_resolver.py")] + (silent ? ["--silent"] : []))
    guard await peer.waitFor("\n"), let line = peer.text.split(separator: "\n").first(where: { $0.hasPrefix("PORT ") }),
          let port = Int(line.dropFirst(5)) else {
        peer.stop()
        throw PeerFailure(output: peer.text)
    }
    return (peer, try SocketAddress(ipAddress: "127.0.0.1", port: port))
}

private struct PeerFailure: Error, CustomStringConvertible {
    let output: String
    var description: String { "upstream peer did not start: \(output)" }
}

/// A UDP address where nothing listens (a port bound, then released).
private func deadUpstream() async throws -> SocketAddress {
    let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
    let address = try #require(channel.localAddress)
    try await channel.close()
    return address
}

/// A UDP socket bound and a TCP socket listening on the same free port of 127.0.0.1.
private func boundSockets() throws -> (udp: CInt, tcp: CInt, port: Int) {
    func bind(_ socket: CInt, port: UInt16) -> Bool {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
    for _ in 0..<8 {
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        guard udp >= 0, bind(udp, port: 0), withUnsafeMutablePointer(to: &bound, {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(udp, $0, &length) == 0 }
        }) else { throw CaptureError.system(operation: "bind UDP", errno: errno) }
        let port = UInt16(bigEndian: bound.sin_port)
        let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if tcp >= 0, bind(tcp, port: port), listen(tcp, 128) == 0 { return (udp, tcp, Int(port)) }
        close(udp)
        if tcp >= 0 { close(tcp) }
    }
    throw CaptureError.system(operation: "bind TCP", errno: errno)
}

@Suite("DNS proxy against dig", .enabled(if: digAvailable, "needs dig (apt-get install bind9-dnsutils)"))
struct DNSProxyDigTests {
    @Test("all four name forms resolve to the VIP from namespace demo, over UDP and TCP")
    func nameForms() async throws {
        let running = try await RunningProxy.start()
        do {
            for name in ["echo.demo.svc.cluster.local", "echo.demo.svc", "echo.demo", "echo", "ECHO.Demo.svc.cluster.local."] {
                #expect(try await running.short([name]) == ["10.96.0.10"], "\(name) over UDP")
                #expect(try await running.short(["+tcp", name]) == ["10.96.0.10"], "\(name) over TCP")
            }
            #expect(Set(try await running.short(["multi"])) == ["10.96.0.20", "10.96.0.21"])
            let full = try await running.dig(["echo.demo.svc.cluster.local"])
            #expect(full.contains("status: NOERROR"))
            #expect(full.contains(" aa"))
            #expect(full.contains("30\tIN\tA\t10.96.0.10"))
            #expect(running.proxy.counters.answeredLocally == 12)
        } catch {
            await running.stop()
            throw error
        }
        await running.stop()
    }

    @Test("a short name from another namespace does not resolve to the VIP")
    func otherNamespace() async throws {
        let running = try await RunningProxy.start(clientNamespace: "other")
        do {
            #expect(try await running.short(["echo"]).isEmpty)
            #expect(try await running.short(["echo.demo"]) == ["10.96.0.10"])
        } catch {
            await running.stop()
            throw error
        }
        await running.stop()
    }

    @Test("AAAA for a service is NOERROR without answers; an unknown svc.cluster.local name is NXDOMAIN")
    func noDataAndNXDomain() async throws {
        let running = try await RunningProxy.start()
        do {
            let aaaa = try await running.dig(["AAAA", "echo.demo.svc.cluster.local"])
            #expect(aaaa.contains("status: NOERROR"))
            #expect(aaaa.contains("ANSWER: 0"))
            let tcpAAAA = try await running.dig(["+tcp", "AAAA", "echo"])
            #expect(tcpAAAA.contains("status: NOERROR") && tcpAAAA.contains("ANSWER: 0"))
            let missing = try await running.dig(["nope.demo.svc.cluster.local"])
            #expect(missing.contains("status: NXDOMAIN"))
            #expect(missing.contains(" aa"))
            #expect(try await running.dig(["+tcp", "Nope.Other.SVC.cluster.local"]).contains("status: NXDOMAIN"))
        } catch {
            await running.stop()
            throw error
        }
        await running.stop()
    }

    @Test("other names are forwarded to an upstream and its record relayed, over UDP and TCP")
    func forwards() async throws {
        let (upstream, address) = try await startUpstream()
        defer { upstream.stop() }
        let running = try await RunningProxy.start(upstreams: [address])
        do {
            #expect(try await running.short(["example.org"]) == ["203.0.113.7"])
            #expect(try await running.short(["+tcp", "www.example.com"]) == ["203.0.113.7"])
            let full = try await running.dig(["+noedns", "forwarded.example.net"])
            #expect(full.contains("status: NOERROR") && full.contains("203.0.113.7"))
            #expect(upstream.text.contains("ASKED example.org"))
            #expect(upstream.text.contains("ASKED www.example.com"))
            #expect(!upstream.text.contains("ASKED echo"))
            #expect(running.proxy.counters.forwarded == 3)
        } catch {
            await running.stop()
            throw error
        }
        await running.stop()
    }

    @Test("a dead first upstream is passed over for the next")
    func failover() async throws {
        let (upstream, address) = try await startUpstream()
        defer { upstream.stop() }
        let running = try await RunningProxy.start(upstreams: [try await deadUpstream(), address])
        do {
            #expect(try await running.short(["failover.example.org"]) == ["203.0.113.7"])
        } catch {
            await running.stop()
            throw error
        }
        await running.stop()
    }

    @Test("an upstream that never answers is given up on for the next; with none answering, SERVFAIL")
    func silentUpstream() async throws {
        let (silent, silentAddress) = try await startUpstream(silent: true)
        defer { silent.stop() }
        let (upstream, address) = try await startUpstream()
        defer { upstream.stop() }
        // Generous per-upstream timeouts: on a loaded machine a slow answer must not pass for a silent upstream.
        let running = try await RunningProxy.start(upstreams: [silentAddress, address], upstreamTimeout: .seconds(2))
        let alone = try await RunningProxy.start(upstreams: [silentAddress], upstreamTimeout: .seconds(2))
        do {
            #expect(try await running.short(["slow.example.org"]) == ["203.0.113.7"])
            #expect(silent.text.contains("ASKED slow.example.org"))
            #expect(try await alone.dig(["alone.example.org"]).contains("status: SERVFAIL"))
            #expect(alone.proxy.counters.failed == 1)
        } catch {
            await running.stop()
            await alone.stop()
            throw error
        }
        await running.stop()
        await alone.stop()
    }

    @Test("serve answers on sockets bound and listening beforehand, as made in a pod's namespace")
    func serveBoundSockets() async throws {
        let (udp, tcp, port) = try boundSockets()
        let proxy = try makeProxy()
        let channels = try await proxy.serve(udpSocket: udp, tcpSocket: tcp, clientNamespace: "demo")
        let running = RunningProxy(proxy: proxy, channels: channels, port: port)
        do {
            #expect(channels.count == 2)
            #expect(try await running.short(["echo"]) == ["10.96.0.10"])
            #expect(try await running.short(["+tcp", "echo.demo.svc"]) == ["10.96.0.10"])
        } catch {
            await running.stop()
            throw error
        }
        await running.stop()
    }

    @Test("with no upstream reachable, or none configured, forwarded names get SERVFAIL")
    func servfail() async throws {
        for upstreams in [[try await deadUpstream()], []] {
            let running = try await RunningProxy.start(upstreams: upstreams)
            do {
                #expect(try await running.dig(["example.org"]).contains("status: SERVFAIL"))
                #expect(try await running.dig(["+tcp", "example.org"]).contains("status: SERVFAIL"))
                #expect(running.proxy.counters.failed == 2)
                #expect(try await running.short(["echo"]) == ["10.96.0.10"])
            } catch {
                await running.stop()
                throw error
            }
            await running.stop()
        }
    }

    @Test("malformed datagrams do not stop the proxy; a readable header gets FORMERR; a good query then works")
    func malformed() async throws {
        let running = try await RunningProxy.start()
        let script = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(15)
        to = ("127.0.0.1", int(sys.argv[1]))
        h = lambda i, qd=1, flags=b"\\x01\\x00": i.to_bytes(2, "big") + flags + qd.to_bytes(2, "big") + b"\\x00" * 6
        for m in [b"", b"\\x01", b"\\xff" * 11, h(1) + b"\\xc0\\x0c\\x00\\x01\\x00\\x01", h(2) + b"\\x01a\\xc0\\x0c\\x00\\x01\\x00\\x01",
                  h(3) + b"\\x3fabc", h(4) + b"\\x41a\\x00\\x00\\x01\\x00\\x01", h(5, 2) + b"\\x01a\\x00\\x00\\x01\\x00\\x01",
                  h(6, 1, b"\\x81\\x80") + b"\\x01a\\x00\\x00\\x01\\x00\\x01", h(7) + b"\\x01a" * 200 + b"\\x00\\x00\\x01\\x00\\x01",
                  bytes(range(256))]:
            s.sendto(m, to)
        s.sendto(h(0xbeef) + b"\\xc0\\x0c\\x00\\x01\\x00\\x01", to)
        while True:
            d, _ = s.recvfrom(4096)
            if d[:2] == b"\\xbe\\xef":
                print("RCODE", d[3] & 15, "QR", d[2] >> 7, flush=True)
                break
        """
        do {
            let python = try #require(pythonPath, "python3 not found")
            let output = try await Interop.run(python, ["-c", script, "\(running.port)"])
            #expect(output.stdout.contains("RCODE 1 QR 1"), "\(output.combined)")
            #expect(try await running.short(["echo.demo"]) == ["10.96.0.10"])
            #expect(try await running.short(["+tcp", "echo.demo"]) == ["10.96.0.10"])
            #expect(running.proxy.counters.malformed >= 10)
        } catch {
            await running.stop()
            throw error
        }
        await running.stop()
    }
}
