/// A fixed-size value that can be a BPF map key or value: it converts to and
/// from exactly ``bpfSize`` raw bytes laid out as the C struct in `bpf/include`.
///
/// Types that are bitwise-copyable and have no implicit padding (the integer
/// types and the structs imported from `bpf/include/mesh_maps.h`) conform
/// through ``BPFFixedLayout`` without writing any code.
public protocol BPFMapRepresentable: Sendable {
    /// Number of bytes of the key or value in the kernel.
    static var bpfSize: Int { get }
    /// Reads a value from exactly ``bpfSize`` bytes.
    init(bpfBytes: UnsafeRawBufferPointer)
    /// Calls `body` with the ``bpfSize`` bytes of this value.
    func withBPFBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

/// A ``BPFMapRepresentable`` whose in-memory representation is its map
/// representation: a trivial (plain-old-data) type without implicit padding.
///
/// Conform only such types (integers, imported C structs): every byte must
/// be a field (the C headers in `bpf/include` name their padding explicitly
/// for this reason), since padding bytes of a hash key would otherwise make
/// equal keys differ. A non-trivial conformer traps on first use.
public protocol BPFFixedLayout: BPFMapRepresentable {}

extension BPFFixedLayout {
    @inlinable
    public static var bpfSize: Int {
        precondition(_isPOD(Self.self), "BPFFixedLayout requires a trivial type: \(Self.self)")
        return MemoryLayout<Self>.size
    }

    @inlinable
    public init(bpfBytes: UnsafeRawBufferPointer) {
        precondition(_isPOD(Self.self), "BPFFixedLayout requires a trivial type: \(Self.self)")
        precondition(bpfBytes.count >= MemoryLayout<Self>.size, "short buffer for \(Self.self)")
        self = bpfBytes.loadUnaligned(as: Self.self)
    }

    @inlinable
    public func withBPFBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: self) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<Self.bpfSize])) }
    }
}

extension UInt8: BPFFixedLayout {}
extension UInt16: BPFFixedLayout {}
extension UInt32: BPFFixedLayout {}
extension UInt64: BPFFixedLayout {}
extension Int32: BPFFixedLayout {}
extension Int64: BPFFixedLayout {}
