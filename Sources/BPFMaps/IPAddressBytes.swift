#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as the bytes BPF keys store (network byte order).
public struct IPAddressBytes: Hashable, Sendable, CustomStringConvertible {
    /// Address family.
    public enum Family: UInt8, Hashable, Sendable {
        case ipv4 = 4
        case ipv6 = 6

        /// Number of address bits.
        public var bitCount: Int { self == .ipv4 ? 32 : 128 }
    }

    public let family: Family
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    /// Parses a textual address ("10.0.0.1", "fd00::1"); nil when it is not one.
    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            family = .ipv4
            bytes = withUnsafeBytes(of: v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            family = .ipv6
            bytes = withUnsafeBytes(of: v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// An address from raw bytes (4 or 16); nil for any other length.
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: family = .ipv4
        case 16: family = .ipv6
        default: return nil
        }
        self.bytes = bytes
    }

    /// The 16-byte form used by the shared layouts (IPv4 in the first 4 bytes, rest zero).
    public var padded16: [UInt8] { bytes + [UInt8](repeating: 0, count: 16 - bytes.count) }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: 64)
        let ok: Bool = bytes.withUnsafeBytes { raw in
            inet_ntop(family == .ipv4 ? AF_INET : AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return "invalid" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
