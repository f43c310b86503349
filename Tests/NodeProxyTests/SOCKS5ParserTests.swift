import NIOCore
import NodeProxy
import Testing

@Suite("SOCKS5 handshake parsing")
struct SOCKS5ParserTests {
    /// Feeds `bytes` one at a time: nothing may be consumed until the message is complete.
    private func parseRequestByteByByte(_ bytes: [UInt8]) throws(SOCKS5Error) -> (SOCKS5Request?, remaining: Int) {
        var buffer = ByteBuffer()
        for byte in bytes {
            buffer.writeInteger(byte)
            if let request = try SOCKS5Parser.parseRequest(&buffer) { return (request, buffer.readableBytes) }
            #expect(buffer.readerIndex == 0, "bytes consumed from an incomplete request")
        }
        return (nil, buffer.readableBytes)
    }

    @Test("a greeting offering method 0 is accepted only once complete, and only its bytes are consumed")
    func greeting() throws {
        var buffer = ByteBuffer(bytes: [5, 2, 2])
        #expect(try SOCKS5Parser.parseGreeting(&buffer) == false)
        #expect(buffer.readableBytes == 3)
        buffer.writeBytes([0, 5, 1])  // the last method byte, then the start of the request
        #expect(try SOCKS5Parser.parseGreeting(&buffer) == true)
        #expect(buffer.readableBytes == 2)
    }

    @Test("greetings of another version or without method 0 are refused")
    func greetingRefused() {
        var socks4 = ByteBuffer(bytes: [4, 1, 0])
        #expect(throws: SOCKS5Error.unsupportedVersion(4)) { try SOCKS5Parser.parseGreeting(&socks4) }
        var passwordOnly = ByteBuffer(bytes: [5, 1, 2])
        #expect(throws: SOCKS5Error.noAcceptableMethod) { try SOCKS5Parser.parseGreeting(&passwordOnly) }
        var none = ByteBuffer(bytes: [5, 0])
        #expect(throws: SOCKS5Error.noAcceptableMethod) { try SOCKS5Parser.parseGreeting(&none) }
    }

    @Test("CONNECT to IPv4, IPv6 and a domain name, fed one byte at a time; trailing bytes are left")
    func requests() throws {
        let ipv4 = try parseRequestByteByByte([5, 1, 0, 1, 10, 244, 1, 7, 0x1F, 0x90, 0xAA])
        #expect(ipv4.0 == SOCKS5Request(host: "10.244.1.7", port: 8080))
        #expect(ipv4.remaining == 0)  // the trailing byte was never written: parsing stopped at the request's end

        var ipv6Bytes: [UInt8] = [5, 1, 0, 4]
        ipv6Bytes += [0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        ipv6Bytes += [0, 80]
        #expect(try parseRequestByteByByte(ipv6Bytes).0 == SOCKS5Request(host: "fd00:0:0:0:0:0:0:1", port: 80))

        let name = Array("echo.default.svc.cluster.local".utf8)
        let domain = try parseRequestByteByByte([5, 1, 0, 3, UInt8(name.count)] + name + [0, 80])
        #expect(domain.0 == SOCKS5Request(host: "echo.default.svc.cluster.local", port: 80))

        var withData = ByteBuffer(bytes: [5, 1, 0, 1, 127, 0, 0, 1, 0, 80] + Array("GET /".utf8))
        #expect(try SOCKS5Parser.parseRequest(&withData) == SOCKS5Request(host: "127.0.0.1", port: 80))
        #expect(withData.readString(length: withData.readableBytes) == "GET /")
    }

    @Test("BIND, UDP ASSOCIATE, unknown address types and bad names are refused with RFC 1928's reply codes")
    func requestsRefused() {
        let cases: [([UInt8], SOCKS5Error, UInt8)] = [
            ([5, 2, 0, 1, 1, 2, 3, 4, 0, 80], .unsupportedCommand(2), 0x07),
            ([5, 3, 0, 1, 1, 2, 3, 4, 0, 80], .unsupportedCommand(3), 0x07),
            ([5, 1, 0, 2, 1, 2, 3, 4, 0, 80], .unsupportedAddressType(2), 0x08),
            ([5, 1, 0, 3, 0, 0, 80], .invalidDomainName, 0x01),
            ([5, 1, 0, 3, 2, 0xC3, 0x28, 0, 80], .invalidDomainName, 0x01),
            ([4, 1, 0, 1, 1, 2, 3, 4, 0, 80], .unsupportedVersion(4), 0x01),
        ]
        for (bytes, expected, code) in cases {
            var buffer = ByteBuffer(bytes: bytes)
            #expect(throws: expected) { try SOCKS5Parser.parseRequest(&buffer) }
            #expect(expected.replyCode == code)
        }
    }
}
