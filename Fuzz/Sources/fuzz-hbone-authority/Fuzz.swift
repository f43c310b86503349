import FuzzSupport
import HBONE
import NIOCore
import NIOHPACK

// HBONE CONNECT request headers, as an HBONE server reads them from a peer.
//
// Selector byte, even: text lines, `authority\nforwarded\nbaggage\ntraceparent`,
// straight into HBONEAuthority(parsing:) and HBONEForwarding.parseForwardedFor.
// Odd: an HPACK header block (what arrives in a HEADERS frame), decoded with
// NIOHPACK and then read the way HBONE's inbound stream handler reads a CONNECT
// (:method, :authority, forwarded, baggage, traceparent; the handler itself is
// internal and needs a TLS peer, so its header reading is repeated here).
//
// Invariants: an accepted authority has a host and a port in 1...65535, prints
// to text that parses back to itself, and says it is an IP address exactly
// when it has a socket address.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var reader = FuzzReader(Fuzz.bytes(data, size))
    let selector = reader.byte()
    let body = reader.rest()
    if selector & 1 == 0 {
        let lines = Fuzz.text(body).split(separator: "\n", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        connect(method: "CONNECT", authority: lines[0], forwarded: lines.count > 1 ? lines[1] : nil,
                baggage: lines.count > 2 ? lines[2] : nil, traceparent: lines.count > 3 ? lines[3] : nil)
    } else {
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        var buffer = ByteBuffer(bytes: body)
        // A header block may arrive split over HEADERS and CONTINUATION frames; NIOHTTP2 joins them first.
        guard let headers = try? decoder.decodeHeaders(from: &buffer) else { return 0 }
        connect(method: headers.first(name: ":method"), authority: headers.first(name: ":authority") ?? "",
                forwarded: headers.first(name: "forwarded"), baggage: headers.first(name: "baggage"),
                traceparent: headers.first(name: "traceparent"))
    }
    return 0
}

private func connect(method: String?, authority rawAuthority: String, forwarded: String?, baggage: String?, traceparent: String?) {
    let source = forwarded.flatMap(HBONEForwarding.parseForwardedFor)
    if let source { Fuzz.check(!source.isEmpty, "parseForwardedFor returned an empty source for \(forwarded ?? "")") }
    let forwarding = HBONEForwarding(source: source, baggage: baggage, traceparent: traceparent)
    if let header = forwarding.forwardedHeader {
        // What a client sends for this source; a hop that reads it back gets the source (unless it has quotes or separators).
        if !(source ?? "").contains(where: { $0 == "\"" || $0 == "," || $0 == ";" || $0 == " " }) {
            Fuzz.check(HBONEForwarding.parseForwardedFor(header) == source, "forwarded \(header) does not read back as \(source ?? "nil")")
        }
    }
    guard method == "CONNECT", let authority = try? HBONEAuthority(parsing: rawAuthority) else { return }
    Fuzz.check(!authority.host.isEmpty && (1...65535).contains(authority.port), "accepted \(rawAuthority) as \(authority.host) port \(authority.port)")
    Fuzz.check((try? HBONEAuthority(parsing: authority.description)) == authority,
               "\(rawAuthority) parsed as \(authority.host) \(authority.port), printed as \(authority.description), which does not parse back")
    Fuzz.check(authority.isIPAddress == (authority.socketAddress != nil), "isIPAddress disagrees with socketAddress for \(authority)")
    if let address = authority.socketAddress {
        Fuzz.check((try? HBONEAuthority(address)) != nil, "the socket address of \(authority) has no authority")
    }
}
