import NIOCore

/// Why a SOCKS5 (RFC 1928) greeting or request was refused, with the reply code the client is sent.
public enum SOCKS5Error: Error, Sendable, Equatable, CustomStringConvertible {
    /// The first byte was not 5.
    case unsupportedVersion(UInt8)
    /// The greeting did not offer "no authentication required" (method 0).
    case noAcceptableMethod
    /// A command other than CONNECT (BIND 2, UDP ASSOCIATE 3, or unknown).
    case unsupportedCommand(UInt8)
    /// An address type other than IPv4 (1), domain name (3) or IPv6 (4).
    case unsupportedAddressType(UInt8)
    /// A domain name that is empty or not UTF-8 text.
    case invalidDomainName

    /// The REP field of the reply sent before closing (RFC 1928 §6); 0xFF answers a greeting.
    public var replyCode: UInt8 {
        switch self {
        case .noAcceptableMethod: return 0xFF
        case .unsupportedVersion, .invalidDomainName: return 0x01  // general failure
        case .unsupportedCommand: return 0x07
        case .unsupportedAddressType: return 0x08
        }
    }

    public var description: String {
        switch self {
        case .unsupportedVersion(let version): return "SOCKS version \(version) is not supported (only 5)"
        case .noAcceptableMethod: return "the client offered no method without authentication"
        case .unsupportedCommand(let command): return "SOCKS command \(command) is not supported (only CONNECT, 1)"
        case .unsupportedAddressType(let type): return "SOCKS address type \(type) is not supported (1, 3 or 4)"
        case .invalidDomainName: return "the requested domain name is empty or not UTF-8"
        }
    }
}

/// The destination of a SOCKS5 CONNECT request.
public struct SOCKS5Request: Sendable, Equatable {
    /// A dotted IPv4 address, a full-form IPv6 address or a domain name.
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// Incremental parsing of the client's half of a SOCKS5 handshake (no authentication, CONNECT only).
///
/// Each function consumes bytes from `buffer` only when a whole message is there; it returns nil
/// (consuming nothing) while bytes are missing, and throws when the message can never be accepted.
public enum SOCKS5Parser {
    /// Parses VER NMETHODS METHODS; true once a complete greeting offering method 0 was read.
    public static func parseGreeting(_ buffer: inout ByteBuffer) throws(SOCKS5Error) -> Bool {
        let start = buffer.readerIndex
        guard let version = buffer.getInteger(at: start, as: UInt8.self) else { return false }
        guard version == 5 else { throw .unsupportedVersion(version) }
        guard let count = buffer.getInteger(at: start + 1, as: UInt8.self),
              let methods = buffer.getBytes(at: start + 2, length: Int(count)) else { return false }
        guard methods.contains(0) else { throw .noAcceptableMethod }
        buffer.moveReaderIndex(forwardBy: 2 + Int(count))
        return true
    }

    /// Parses VER CMD RSV ATYP DST.ADDR DST.PORT; the request once it is complete.
    public static func parseRequest(_ buffer: inout ByteBuffer) throws(SOCKS5Error) -> SOCKS5Request? {
        let start = buffer.readerIndex
        guard let header = buffer.getBytes(at: start, length: 4) else { return nil }
        guard header[0] == 5 else { throw .unsupportedVersion(header[0]) }
        guard header[1] == 1 else { throw .unsupportedCommand(header[1]) }
        let host: String
        var cursor = start + 4
        switch header[3] {
        case 1:
            guard let raw = buffer.getBytes(at: cursor, length: 4) else { return nil }
            host = raw.map(String.init).joined(separator: ".")
            cursor += 4
        case 4:
            guard let raw = buffer.getBytes(at: cursor, length: 16) else { return nil }
            host = stride(from: 0, to: 16, by: 2)
                .map { String(UInt16(raw[$0]) << 8 | UInt16(raw[$0 + 1]), radix: 16) }
                .joined(separator: ":")
            cursor += 16
        case 3:
            guard let length = buffer.getInteger(at: cursor, as: UInt8.self),
                  let raw = buffer.getBytes(at: cursor + 1, length: Int(length)) else { return nil }
            guard length > 0, let name = String(validating: raw, as: UTF8.self) else { throw .invalidDomainName }
            host = name
            cursor += 1 + Int(length)
        default:
            throw .unsupportedAddressType(header[3])
        }
        guard let port = buffer.getInteger(at: cursor, as: UInt16.self) else { return nil }
        buffer.moveReaderIndex(forwardBy: cursor + 2 - start)
        return SOCKS5Request(host: host, port: Int(port))
    }
}
