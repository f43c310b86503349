import FuzzSupport
import NIOCore
import NodeProxy

// A SOCKS5 client's first bytes (greeting, then CONNECT request), as ztunnel's
// SOCKS5 listener reads them: through SOCKS5Parser, the parser its handler uses.
//
// The first input byte chooses how the rest arrives: in one read, one byte per
// read, or in reads of (selector % 7 + 2) bytes. TCP may split a stream anywhere,
// so every way must give the same outcome.
//
// Invariants: the outcome (accepted request and bytes left over, or the same
// error at the same step) does not depend on how the bytes were split; a parse
// that needs more bytes consumes none; an accepted request has a non-empty
// host and encodes back to bytes that parse to the same request.

private enum Outcome: Equatable {
    case needMore(step: Int)
    case refused(SOCKS5Error, step: Int)
    case request(SOCKS5Request, left: Int)
}

private func parse(_ bytes: [UInt8], readSize: Int) -> Outcome {
    var buffer = ByteBuffer()
    var offset = 0
    var greeted = false
    repeat {
        let end = min(bytes.count, offset + readSize)
        buffer.writeBytes(bytes[offset..<end])
        offset = end
        let before = buffer.readerIndex
        do {
            if !greeted {
                guard try SOCKS5Parser.parseGreeting(&buffer) else {
                    Fuzz.check(buffer.readerIndex == before, "an incomplete greeting consumed bytes")
                    continue
                }
                greeted = true
            }
            let afterGreeting = buffer.readerIndex
            guard let request = try SOCKS5Parser.parseRequest(&buffer) else {
                Fuzz.check(buffer.readerIndex == afterGreeting, "an incomplete request consumed bytes")
                continue
            }
            return .request(request, left: buffer.readableBytes + bytes.count - offset)
        } catch {
            return .refused(error, step: greeted ? 1 : 0)
        }
    } while offset < bytes.count
    return .needMore(step: greeted ? 1 : 0)
}

private func encode(_ request: SOCKS5Request) -> [UInt8]? {
    var bytes: [UInt8] = [5, 1, 0]
    let octets = request.host.split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt8($0) }
    if octets.count == 4, request.host.split(separator: ".").count == 4, octets.map(String.init).joined(separator: ".") == request.host {
        bytes += [1] + octets
    } else if request.host.contains(":") {
        let groups = request.host.split(separator: ":").compactMap { UInt16($0, radix: 16) }
        guard groups.count == 8 else { return nil }
        bytes += [4] + groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    } else {
        let name = Array(request.host.utf8)
        guard name.count <= 255 else { return nil }
        bytes += [3, UInt8(name.count)] + name
    }
    return bytes + [UInt8(request.port >> 8), UInt8(request.port & 0xFF)]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var reader = FuzzReader(Fuzz.bytes(data, size))
    let selector = reader.byte()
    let stream = Array(reader.rest())
    let whole = parse(stream, readSize: max(stream.count, 1))
    let split = parse(stream, readSize: selector & 1 == 0 ? 1 : Int(selector % 7) + 2)
    Fuzz.check(whole == split, "one read gave \(whole), split reads gave \(split)")
    if case .request(let request, _) = whole {
        Fuzz.check(!request.host.isEmpty, "accepted a request with an empty host")
        Fuzz.check((0...65535).contains(request.port), "port \(request.port)")
        if let encoded = encode(request) {
            var buffer = ByteBuffer(bytes: encoded)
            let again = try? SOCKS5Parser.parseRequest(&buffer)
            Fuzz.check(again == request, "\(request) encoded as \(encoded) parses back as \(String(describing: again))")
            Fuzz.check(buffer.readableBytes == 0, "re-encoded request left \(buffer.readableBytes) bytes")
        }
    }
    return 0
}
