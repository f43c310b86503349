/// A generic LPM trie key for IPv4 prefixes: `struct { __u32 prefixlen; __u8 addr[4]; }`.
public struct IPv4PrefixKey: BPFMapRepresentable, Hashable {
    public static var bpfSize: Int { 8 }
    /// Number of leading address bits that must match (0...32).
    public var prefixLength: UInt32
    /// Address in network byte order.
    public var address: [UInt8]

    /// A key for `address/prefixLength`; nil when the address is not IPv4 or the length exceeds 32.
    public init?(_ address: IPAddressBytes, prefixLength: Int) {
        guard address.family == .ipv4, (0...32).contains(prefixLength) else { return nil }
        self.prefixLength = UInt32(prefixLength)
        self.address = address.bytes
    }

    public init(bpfBytes: UnsafeRawBufferPointer) {
        prefixLength = bpfBytes.loadUnaligned(as: UInt32.self)
        address = Array(bpfBytes[4..<8])
    }

    public func withBPFBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var raw = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: prefixLength) { raw.replaceSubrange(0..<4, with: $0) }
        raw.replaceSubrange(4..<8, with: address.prefix(4))
        return try raw.withUnsafeBytes(body)
    }
}

/// A generic LPM trie key for IPv6 prefixes: `struct { __u32 prefixlen; __u8 addr[16]; }`.
public struct IPv6PrefixKey: BPFMapRepresentable, Hashable {
    public static var bpfSize: Int { 20 }
    /// Number of leading address bits that must match (0...128).
    public var prefixLength: UInt32
    /// Address in network byte order.
    public var address: [UInt8]

    /// A key for `address/prefixLength`; nil when the address is not IPv6 or the length exceeds 128.
    public init?(_ address: IPAddressBytes, prefixLength: Int) {
        guard address.family == .ipv6, (0...128).contains(prefixLength) else { return nil }
        self.prefixLength = UInt32(prefixLength)
        self.address = address.bytes
    }

    public init(bpfBytes: UnsafeRawBufferPointer) {
        prefixLength = bpfBytes.loadUnaligned(as: UInt32.self)
        address = Array(bpfBytes[4..<20])
    }

    public func withBPFBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var raw = [UInt8](repeating: 0, count: 20)
        withUnsafeBytes(of: prefixLength) { raw.replaceSubrange(0..<4, with: $0) }
        raw.replaceSubrange(4..<20, with: address.prefix(16))
        return try raw.withUnsafeBytes(body)
    }
}
