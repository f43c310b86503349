import Logging

/// Helpers shared by the fuzz harnesses: reading libFuzzer's input, checking
/// invariants (a broken invariant is a crash, which libFuzzer records), and a
/// logger that prints nothing (logging every rejected input would cost more
/// than parsing it).
public enum Fuzz {
    /// The input as bytes.
    public static func bytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
        Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// The input as text, as a server would read it off the wire (invalid UTF-8 repaired).
    public static func text(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// Stops with a message when an invariant does not hold: libFuzzer saves the input.
    public static func check(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
        if !condition { fatalError("fuzz invariant violated: \(message())", file: file, line: line) }
    }

    /// A logger that drops everything.
    public static func quietLogger(_ label: String = "fuzz") -> Logger {
        Logger(label: label, factory: { _ in SwiftLogNoOpLogHandler() })
    }
}

/// Reads an input field by field: a selector byte first, then the rest.
public struct FuzzReader {
    private var bytes: ArraySlice<UInt8>

    public init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    /// The next byte, or 0 when the input is used up.
    public mutating func byte() -> UInt8 {
        guard let first = bytes.first else { return 0 }
        bytes = bytes.dropFirst()
        return first
    }

    /// The next big-endian 16-bit value (0 when short).
    public mutating func uint16() -> UInt16 {
        UInt16(byte()) << 8 | UInt16(byte())
    }

    /// Up to `count` bytes.
    public mutating func take(_ count: Int) -> ArraySlice<UInt8> {
        let part = bytes.prefix(count)
        bytes = bytes.dropFirst(part.count)
        return part
    }

    /// Everything left.
    public mutating func rest() -> ArraySlice<UInt8> {
        defer { bytes = bytes.suffix(0) }
        return bytes
    }

    public var isEmpty: Bool { bytes.isEmpty }
}
