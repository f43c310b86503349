import Foundation

/// An IP prefix (`10.0.0.0/8`, `2001:db8::/32`) as Istio's `Address` carries it:
/// network-order bytes and a prefix length.
public struct AddressRange: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: Data
    /// Leading bits that must match.
    public let prefixLength: Int

    /// A range from bytes and a length; refuses lengths beyond the address width and other sizes.
    public init(bytes: Data, prefixLength: Int) throws(WorkloadStoreError) {
        guard bytes.count == 4 || bytes.count == 16 else { throw .invalidAddress("\(bytes.count)-byte address") }
        guard (0...(bytes.count * 8)).contains(prefixLength) else {
            throw .invalidValue(field: "address length", value: "\(prefixLength) for a \(bytes.count * 8)-bit address")
        }
        self.bytes = bytes
        self.prefixLength = prefixLength
    }

    /// Parses `ADDRESS/LENGTH` or a bare address (a host range).
    public init(parsing text: String) throws(WorkloadStoreError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let address = parts.first, !address.isEmpty else { throw .invalidAddress(text) }
        let bytes = try IPAddressText.bytes(address)
        guard parts.count == 1 || Int(parts[1]) != nil else { throw .invalidAddress(text) }
        try self.init(bytes: bytes, prefixLength: parts.count == 2 ? Int(parts[1])! : bytes.count * 8)
    }

    /// True when the textual address `text` is inside the range (an unparsable text never is).
    public func contains(_ text: String) -> Bool {
        guard let other = try? IPAddressText.bytes(text), other.count == bytes.count else { return false }
        var remaining = prefixLength
        for (a, b) in zip(bytes, other) where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
            if a & mask != b & mask { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String {
        let address = bytes.count == 4
            ? bytes.map(String.init).joined(separator: ".")
            : stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[bytes.startIndex + $0]) << 8 | UInt16(bytes[bytes.startIndex + $0 + 1]), radix: 16) }.joined(separator: ":")
        return "\(address)/\(prefixLength)"
    }
}
