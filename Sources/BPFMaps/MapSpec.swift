/// Describes a map to create or to open: type, key and value sizes, maximum
/// number of entries, flags, name and pinning (cilium/ebpf's `MapSpec`).
///
/// A spec is plain data; ``BPFMap/create(_:)`` turns it into a live map.
public struct MapSpec: Hashable, Sendable {
    /// Where a map is pinned in a BPF file system.
    public enum Pinning: Hashable, Sendable {
        /// Not pinned: the map lives as long as a file descriptor or program uses it.
        case none
        /// Pinned at `directory/name`; an existing compatible pin is reused,
        /// an incompatible one is refused with ``BPFError/incompatible(path:reason:)``.
        case byName(directory: String)
    }

    /// Map name as the kernel shows it (at most 15 bytes are kept).
    public var name: String
    public var type: MapType
    public var keySize: UInt32
    public var valueSize: UInt32
    public var maxEntries: UInt32
    public var flags: MapFlags
    public var pinning: Pinning

    /// Creates a spec. LPM tries default to ``MapFlags/noPrealloc``, which the kernel requires.
    public init(
        name: String,
        type: MapType,
        keySize: UInt32,
        valueSize: UInt32,
        maxEntries: UInt32,
        flags: MapFlags? = nil,
        pinning: Pinning = .none
    ) {
        self.name = name
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags ?? (type == .lpmTrie ? .noPrealloc : [])
        self.pinning = pinning
    }

    /// Creates a spec whose key and value sizes come from fixed-layout Swift types.
    public init<Key: BPFMapRepresentable, Value: BPFMapRepresentable>(
        name: String,
        type: MapType,
        key: Key.Type,
        value: Value.Type,
        maxEntries: UInt32,
        flags: MapFlags? = nil,
        pinning: Pinning = .none
    ) {
        self.init(
            name: name, type: type, keySize: UInt32(Key.bpfSize), valueSize: UInt32(Value.bpfSize),
            maxEntries: maxEntries, flags: flags, pinning: pinning
        )
    }

    /// A ring buffer of `size` bytes (a power of two, multiple of the page size).
    public static func ringBuffer(name: String, size: UInt32, pinning: Pinning = .none) -> MapSpec {
        MapSpec(name: name, type: .ringBuffer, keySize: 0, valueSize: 0, maxEntries: size, pinning: pinning)
    }

    /// The pin path when ``pinning`` is ``Pinning/byName(directory:)``.
    public var pinPath: String? {
        switch pinning {
        case .none: return nil
        case .byName(let directory): return directory.hasSuffix("/") ? directory + name : directory + "/" + name
        }
    }

    /// Why a live map with `info` does not match this spec, or nil when it does.
    func incompatibility(with info: MapInfo) -> String? {
        var reasons: [String] = []
        if info.type != type { reasons.append("type \(info.type) != \(type)") }
        if info.keySize != keySize { reasons.append("key size \(info.keySize) != \(keySize)") }
        if info.valueSize != valueSize { reasons.append("value size \(info.valueSize) != \(valueSize)") }
        if info.maxEntries != maxEntries { reasons.append("max entries \(info.maxEntries) != \(maxEntries)") }
        if info.flags != flags { reasons.append("flags \(info.flags.rawValue) != \(flags.rawValue)") }
        return reasons.isEmpty ? nil : reasons.joined(separator: ", ")
    }
}

/// What the kernel reports about a live map (`bpf_map_info`).
public struct MapInfo: Hashable, Sendable {
    public var name: String
    public var id: UInt32
    public var type: MapType
    public var keySize: UInt32
    public var valueSize: UInt32
    public var maxEntries: UInt32
    public var flags: MapFlags

    public init(name: String, id: UInt32, type: MapType, keySize: UInt32, valueSize: UInt32, maxEntries: UInt32, flags: MapFlags) {
        self.name = name
        self.id = id
        self.type = type
        self.keySize = keySize
        self.valueSize = valueSize
        self.maxEntries = maxEntries
        self.flags = flags
    }
}
