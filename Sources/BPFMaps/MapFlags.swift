/// Creation flags of a map (`map_flags` of `BPF_MAP_CREATE`).
public struct MapFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `BPF_F_NO_PREALLOC`: allocate elements on demand (required for LPM tries).
    public static let noPrealloc = MapFlags(rawValue: 1 << 0)
    /// `BPF_F_RDONLY_PROG`: programs may only read the map.
    public static let readOnlyProgram = MapFlags(rawValue: 1 << 7)
    /// `BPF_F_WRONLY_PROG`: programs may only write the map.
    public static let writeOnlyProgram = MapFlags(rawValue: 1 << 8)
}

/// How an update treats an existing key (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`).
public enum UpdateMode: UInt64, Sendable, Hashable {
    /// Create the element or overwrite it.
    case any = 0
    /// Create the element; fail with ``BPFError/keyExists(operation:)`` if present.
    case noExist = 1
    /// Overwrite the element; fail with ``BPFError/keyNotFound(operation:)`` if absent.
    case exist = 2
}
