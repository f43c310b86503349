import NIOCore

/// The destination of an HBONE CONNECT: `ip:port` or `hostname:port`.
public struct HBONEAuthority: Sendable, Hashable, CustomStringConvertible {
    /// An IP address (without brackets) or a DNS host name.
    public var host: String
    /// The destination port.
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `:authority`: `1.2.3.4:80`, `[::1]:80` or `name.ns.svc.cluster.local:80`.
    public init(parsing value: String) throws(HBONEError) {
        // ASCII only (as the host and port must be): every byte is then a Character, so byte
        // positions found below are Character boundaries and slices never round.
        guard value.utf8.allSatisfy({ $0 < 0x80 }) else { throw .invalidAuthority(value) }
        let hostPart: Substring
        let portPart: Substring
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else { throw .invalidAuthority(value) }
            hostPart = value[value.index(after: value.startIndex)..<close]
            let rest = value[value.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .invalidAuthority(value) }
            portPart = rest.dropFirst()
            guard hostPart.contains(":"), (try? SocketAddress(ipAddress: String(hostPart), port: 0)) != nil else {
                throw .invalidAuthority(value)
            }
        } else {
            guard let colon = value.utf8.lastIndex(of: UInt8(ascii: ":")) else { throw .invalidAuthority(value) }
            hostPart = value[..<colon]
            portPart = value[value.utf8.index(after: colon)...]
            guard !hostPart.utf8.contains(UInt8(ascii: ":")) else { throw .invalidAuthority(value) }
        }
        // Byte by byte (ASCII only): on every tunnel's path, where Character's Unicode checks cost.
        guard !hostPart.isEmpty, hostPart.utf8.count <= 253, hostPart.utf8.allSatisfy(Self.isHostByte),
              !portPart.isEmpty, portPart.utf8.count <= 5, portPart.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let port = Int(portPart), (1...65535).contains(port)
        else { throw .invalidAuthority(value) }
        self.host = String(hostPart)
        self.port = port
    }

    /// An ASCII letter or digit, `.`, `-`, `:` or `_`.
    private static func isHostByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    /// The authority of a socket address.
    public init(_ address: SocketAddress) throws(HBONEError) {
        guard let ip = address.ipAddress, let port = address.port else { throw .invalidAuthority("\(address)") }
        self.init(host: ip, port: port)
    }

    /// The host is an IP address.
    public var isIPAddress: Bool { (try? SocketAddress(ipAddress: host, port: port)) != nil }

    /// The socket address, when the host is an IP address.
    public var socketAddress: SocketAddress? { try? SocketAddress(ipAddress: host, port: port) }

    /// The wire form, with brackets around IPv6 addresses.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The `forwarded`, `baggage` and `traceparent` headers HBONE carries with a CONNECT.
public struct HBONEForwarding: Sendable, Hashable {
    /// The original source `ip:port`, sent as `forwarded: for="<ip:port>"`.
    public var source: String?
    /// W3C baggage (Istio puts the source workload's metadata here).
    public var baggage: String?
    /// W3C trace context.
    public var traceparent: String?

    public init(source: String? = nil, baggage: String? = nil, traceparent: String? = nil) {
        self.source = source
        self.baggage = baggage
        self.traceparent = traceparent
    }

    /// The `forwarded` header value, `for="<source>"`.
    public var forwardedHeader: String? { source.map { "for=\"\($0)\"" } }

    /// Extracts the `for=` element of a `forwarded` header (RFC 7239), quoted or not.
    public static func parseForwardedFor(_ header: String) -> String? {
        for element in header.split(separator: ",").first.map({ $0.split(separator: ";") }) ?? [] {
            let pair = element.trimmingCharacters(in: " ")
            guard pair.lowercased().hasPrefix("for=") else { continue }
            var value = pair.dropFirst(4)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            return value.isEmpty ? nil : String(value)
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var result = self
        while result.first == set { result = result.dropFirst() }
        while result.last == set { result = result.dropLast() }
        return result
    }
}
