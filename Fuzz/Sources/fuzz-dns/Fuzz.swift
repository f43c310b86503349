import FuzzSupport
@testable import NodeProxy
import XDSClient

// DNS queries as ztunnel's in-pod DNS proxy receives them: the bytes of one
// UDP datagram (or one TCP message) through DNSProxy.dispose, which parses the
// header and question (DNSHeader, DNSQuery, name decompression), decides from
// a WorkloadStore with a few services, and encodes the answer (DNSResponse).
// Forwarding is not exercised (no upstream; it only relays bytes).
//
// DNSProxy.dispose and the DNS codec are internal/package: `@testable import NodeProxy`.
//
// Input: byte 0 bit 0 picks UDP (512-byte answers) or TCP, bit 1 whether the
// client's namespace is known; the rest is the message.
//
// Invariants: a reply answers the query's ID with QR set, fits the transport,
// and echoes the question exactly; a forwarded message is the query unchanged.

private let store: WorkloadStore = {
    let services = [
        Service(name: "echo", namespace: "default", hostname: "echo.default.svc.cluster.local",
                vips: [NetworkAddress(address: "10.96.0.10"), NetworkAddress(address: "fd00:10:96::10")], ports: [80: 8080]),
        Service(name: "db", namespace: "data", hostname: "db.data.svc.cluster.local",
                vips: [NetworkAddress(address: "10.96.0.20")], ports: [5432: 5432]),
        Service(name: "many", namespace: "default", hostname: "many.default.svc.cluster.local",
                vips: (1...60).map { NetworkAddress(address: "10.96.1.\($0)") } + (1...30).map { NetworkAddress(address: "fd00::1:\($0)") }),
        Service(name: "headless", namespace: "default", hostname: "headless.default.svc.cluster.local"),
    ]
    guard let store = try? WorkloadStore(WorkloadSnapshot(services: services)) else { fatalError("store") }
    return store
}()
private let proxy = DNSProxy(store: store, upstreams: [], logger: Fuzz.quietLogger())

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var reader = FuzzReader(Fuzz.bytes(data, size))
    let flags = reader.byte()
    let maxLength = flags & 1 == 0 ? 512 : Int(UInt16.max)
    let namespace = flags & 2 == 0 ? "default" : ""
    let message = Array(reader.rest())
    switch proxy.dispose(message, clientNamespace: namespace, maxLength: maxLength) {
    case .drop:
        break
    case .forward(let query, let forwarded):
        Fuzz.check(forwarded == message, "the forwarded message differs from the query")
        Fuzz.check((try? DNSQuery(parsing: message)) == query, "the forwarded query does not parse as the query")
    case .reply(let reply):
        Fuzz.check(reply.count <= maxLength, "a \(reply.count)-byte reply for a \(maxLength)-byte transport")
        guard let header = try? DNSHeader(parsing: reply) else { fatalError("the reply has no header") }
        guard let asked = try? DNSHeader(parsing: message) else { fatalError("a reply to a message without a header") }
        Fuzz.check(header.isResponse && header.id == asked.id, "reply header \(header) to \(asked)")
        Fuzz.check(header.opcode == asked.opcode, "reply opcode \(header.opcode) to \(asked.opcode)")
        if header.questionCount == 1 {
            guard let query = try? DNSQuery(parsing: message) else { fatalError("a question echoed for an unreadable query") }
            var echoed = reply
            echoed[2] &= 0x7f  // read the reply's question as a query's
            Fuzz.check((try? DNSQuery(parsing: echoed))?.question == query.question, "the reply does not echo the question")
            // Every answer is an A or AAAA record named by a pointer to the question.
            var offset = DNSHeader.length + query.question.labels.reduce(1) { $0 + 1 + $1.count } + 4
            for _ in 0..<Int(header.answerCount) {
                Fuzz.check(offset + 12 <= reply.count, "answer record past the end of the reply")
                Fuzz.check(reply[offset] == 0xc0 && reply[offset + 1] == 12, "answer name is not a pointer to the question")
                let length = Int(reply[offset + 10]) << 8 | Int(reply[offset + 11])
                Fuzz.check(length == 4 || length == 16, "answer of \(length) bytes")
                offset += 12 + length
            }
            Fuzz.check(offset == reply.count, "\(reply.count - offset) bytes after the answers")
        }
    }
    return 0
}
