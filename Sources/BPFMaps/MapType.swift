/// The kind of a BPF map (`enum bpf_map_type`), e.g. ``hash`` or ``lpmTrie``.
///
/// A struct over the kernel's numeric value so that maps of types this
/// library has no name for (opened from a pin) can still be described.
public struct MapType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `BPF_MAP_TYPE_HASH`.
    public static let hash = MapType(rawValue: 1)
    /// `BPF_MAP_TYPE_ARRAY`: keys are `UInt32` indices, every element exists.
    public static let array = MapType(rawValue: 2)
    /// `BPF_MAP_TYPE_PERCPU_HASH`: one value per possible CPU.
    public static let perCPUHash = MapType(rawValue: 5)
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`: one value per possible CPU.
    public static let perCPUArray = MapType(rawValue: 6)
    /// `BPF_MAP_TYPE_LRU_HASH`: evicts the least recently used element when full.
    public static let lruHash = MapType(rawValue: 9)
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
    public static let lruPerCPUHash = MapType(rawValue: 10)
    /// `BPF_MAP_TYPE_LPM_TRIE`: longest-prefix match; keys start with a 32-bit prefix length.
    public static let lpmTrie = MapType(rawValue: 11)
    /// `BPF_MAP_TYPE_RINGBUF`: events from programs, read with ``RingBufferReader``.
    public static let ringBuffer = MapType(rawValue: 27)

    /// Whether values are stored once per possible CPU.
    public var isPerCPU: Bool { self == .perCPUHash || self == .perCPUArray || self == .lruPerCPUHash }

    /// Whether every index below `maxEntries` always exists (no delete).
    public var isArray: Bool { self == .array || self == .perCPUArray }

    public var description: String {
        switch self {
        case .hash: return "hash"
        case .array: return "array"
        case .perCPUHash: return "percpu_hash"
        case .perCPUArray: return "percpu_array"
        case .lruHash: return "lru_hash"
        case .lruPerCPUHash: return "lru_percpu_hash"
        case .lpmTrie: return "lpm_trie"
        case .ringBuffer: return "ringbuf"
        default: return "type \(rawValue)"
        }
    }
}
