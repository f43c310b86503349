#if os(Linux)
import CLibBPF
import Glibc
import Logging

/// A live BPF map: owns a file descriptor and closes it on ``close()`` or deinit.
///
/// Create one from a ``MapSpec`` with ``create(_:logger:)``, open a pinned one with
/// ``openPinned(_:expecting:)``, or get one from a loaded ``BPFObject``. Keys and
/// values are fixed-layout Swift values (``BPFMapRepresentable``); their sizes
/// are checked against the map before any system call.
public final class BPFMap: Sendable {
    /// What the kernel reports about the map (type, sizes, flags, id).
    public let info: MapInfo
    /// The pin path, if this map was pinned or opened from a pin through this object.
    public let pinPath: String?
    @usableFromInline let fd: OwnedFileDescriptor
    @usableFromInline let logger: Logger
    // Copies of info fields for the inlinable element operations.
    @usableFromInline let keySize: Int
    @usableFromInline let valueSize: Int
    @usableFromInline let isPerCPU: Bool
    /// Number of possible CPUs (values of per-CPU maps hold one slot per CPU).
    public let possibleCPUs: Int

    init(fd raw: Int32, pinPath: String?, logger: Logger) throws(BPFError) {
        var i = swiftmesh_map_info()
        let rc = swiftmesh_map_info(raw, &i)
        guard rc == 0 else {
            Glibc.close(raw)
            throw BPFError.from(errno: -rc, operation: "map info")
        }
        let name = withUnsafeBytes(of: i.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        self.info = MapInfo(
            name: name, id: i.id, type: MapType(rawValue: i.type), keySize: i.key_size,
            valueSize: i.value_size, maxEntries: i.max_entries, flags: MapFlags(rawValue: i.map_flags)
        )
        self.fd = OwnedFileDescriptor(raw, what: "map \(name)")
        self.keySize = Int(i.key_size)
        self.valueSize = Int(i.value_size)
        self.isPerCPU = MapType(rawValue: i.type).isPerCPU
        self.pinPath = pinPath
        self.logger = logger
        self.possibleCPUs = max(1, Int(libbpf_num_possible_cpus()))
    }

    /// Creates a map from `spec`. With ``MapSpec/Pinning/byName(directory:)`` an
    /// existing pin is reused when it matches the spec and refused with
    /// ``BPFError/incompatible(path:reason:)`` when it does not; otherwise the
    /// new map is pinned there.
    public static func create(_ spec: MapSpec, logger: Logger = Logger(label: "swift-mesh.bpf")) throws(BPFError) -> BPFMap {
        if let path = spec.pinPath {
            do {
                let existing = try openPinned(path, expecting: spec, logger: logger)
                logger.debug("reusing pinned map", metadata: ["path": "\(path)"])
                return existing
            } catch .pinNotFound {
                // create below
            }
        }
        if spec.type == .lpmTrie && !spec.flags.contains(.noPrealloc) {
            throw .invalidArgument(operation: "create map \(spec.name)", argument: "flags: an LPM trie needs .noPrealloc")
        }
        if spec.type == .ringBuffer && (spec.keySize != 0 || spec.valueSize != 0) {
            throw .invalidArgument(operation: "create map \(spec.name)", argument: "keySize/valueSize: a ring buffer has none (use MapSpec.ringBuffer)")
        }
        let raw = spec.name.withCString {
            swiftmesh_map_create(spec.type.rawValue, $0, spec.keySize, spec.valueSize, spec.maxEntries, spec.flags.rawValue)
        }
        guard raw >= 0 else {
            throw BPFError.from(
                errno: -raw, operation: "create map \(spec.name)",
                invalid: "spec (type \(spec.type), key size \(spec.keySize), value size \(spec.valueSize), max entries \(spec.maxEntries), flags \(spec.flags.rawValue)) is not valid for this map type"
            )
        }
        let map = try BPFMap(fd: raw, pinPath: nil, logger: logger)
        if let path = spec.pinPath {
            do {
                try map.pin(at: path)
            } catch .keyExists {
                // Another process pinned the same name between our check and our pin: use theirs.
                map.close()
                return try openPinned(path, expecting: spec, logger: logger)
            }
            return try BPFMap(fd: try map.fd.withFD { fd throws(BPFError) in try duplicate(fd, what: "map") }, pinPath: path, logger: logger)
        }
        return map
    }

    /// Opens the map pinned at `path`; when `spec` is given, refuses a map whose
    /// type, key size, value size, max entries or flags differ.
    public static func openPinned(_ path: String, expecting spec: MapSpec? = nil, logger: Logger = Logger(label: "swift-mesh.bpf")) throws(BPFError) -> BPFMap {
        let raw = bpf_obj_get(path)
        guard raw >= 0 else {
            let err = errno
            if err == ENOENT { throw BPFError.pinNotFound(path: path) }
            throw BPFError.from(errno: err, operation: "open pinned map \(path)", invalid: "path: not a pinned map")
        }
        let map = try BPFMap(fd: raw, pinPath: path, logger: logger)
        if let spec, let reason = spec.incompatibility(with: map.info) {
            map.close()
            throw BPFError.incompatible(path: path, reason: reason)
        }
        return map
    }

    /// Pins the map at `path` (on a BPF file system).
    public func pin(at path: String) throws(BPFError) {
        try BPFFileSystem.requireBPFFS(directoryOf: path)
        try fd.withFD { fd throws(BPFError) in
            let rc = bpf_obj_pin(fd, path)
            guard rc == 0 else { throw BPFError.from(errno: -rc, operation: "pin map at \(path)", invalid: "path") }
        }
    }

    /// Removes the pin at ``pinPath`` (or `path`); the map lives on while file descriptors refer to it.
    public func unpin(_ path: String? = nil) throws(BPFError) {
        guard let target = path ?? pinPath else { throw .invalidArgument(operation: "unpin", argument: "path: the map has no pin") }
        if unlink(target) != 0 {
            let err = errno
            throw err == ENOENT ? .pinNotFound(path: target) : .from(errno: err, operation: "unpin \(target)")
        }
    }

    /// Closes the file descriptor; operations afterwards throw ``BPFError/closed(_:)``.
    public func close() { fd.close() }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { fd.isClosed }

    /// Runs `body` with the raw file descriptor (valid only during the call).
    public func withFileDescriptor<R>(_ body: (Int32) throws(BPFError) -> R) throws(BPFError) -> R {
        try fd.withFD(body)
    }

    // MARK: size checks

    /// Bytes of one value as the kernel transfers it (per-CPU: rounded to 8, times CPUs).
    var valueBufferSize: Int {
        info.type.isPerCPU ? ((Int(info.valueSize) + 7) / 8 * 8) * possibleCPUs : Int(info.valueSize)
    }

    @inlinable
    func checkKey<K: BPFMapRepresentable>(_: K.Type) throws(BPFError) {
        guard K.bpfSize == keySize else { throw .keySizeMismatch(expected: keySize, actual: K.bpfSize) }
    }

    @inlinable
    func checkValue<V: BPFMapRepresentable>(_: V.Type) throws(BPFError) {
        guard V.bpfSize == valueSize else { throw .valueSizeMismatch(expected: valueSize, actual: V.bpfSize) }
    }

    /// The error for a failed element operation (kept out of line).
    @usableFromInline
    func elementError(_ rc: Int32, _ operation: String) -> BPFError {
        let type = info.type
        switch operation {
        case "lookup":
            return .from(errno: -rc, operation: "lookup in \(info.name)", invalid: "key")
        case "delete":
            return .from(errno: -rc, operation: "delete from \(info.name)",
                         invalid: type.isArray ? "map type \(type): array elements cannot be deleted" : "key")
        case "per-CPU":
            return .invalidArgument(operation: "element operation on \(info.name)", argument: "map type \(type) is per-CPU: use lookupPerCPU / updatePerCPU")
        default:
            if type.isArray && -rc == E2BIG {
                return .invalidArgument(operation: "update \(info.name)", argument: "key: array index beyond max entries")
            }
            let hint = type.isArray
                ? "key (index beyond max entries) or mode (.noExist is invalid for arrays)"
                : "key or value (for an LPM trie: prefix length beyond the key's address bits)"
            return .from(errno: -rc, operation: "update \(info.name)", invalid: hint)
        }
    }
}

/// Helpers for the BPF file system (bpffs).
public enum BPFFileSystem {
    /// Whether `path` is on a BPF file system.
    public static func isBPFFS(_ path: String) -> Bool {
        swiftmesh_is_bpffs(path) == 1
    }

    static func requireBPFFS(directoryOf path: String) throws(BPFError) {
        var dir = path
        if let slash = dir.lastIndex(of: "/") { dir = String(dir[..<slash]) }
        if dir.isEmpty { dir = "/" }
        guard access(dir, F_OK) == 0 else { throw .fileNotFound(path: dir) }
        guard isBPFFS(dir) else { throw .notBPFFileSystem(path: dir) }
    }

    /// Creates `path` (and parents) as directories on bpffs, like `mkdir -p`.
    public static func createDirectory(_ path: String) throws(BPFError) {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw .from(errno: errno, operation: "mkdir \(current)")
            }
        }
        guard isBPFFS(path) else { throw .notBPFFileSystem(path: path) }
    }

    /// Removes a directory tree of pins (files are unlinked, directories removed).
    public static func removeTree(_ path: String) {
        guard let dir = opendir(path) else { unlink(path); return }
        var children: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { children.append(path + "/" + name) }
        }
        closedir(dir)
        for child in children {
            var st = stat()
            if lstat(child, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { removeTree(child) } else { unlink(child) }
        }
        rmdir(path)
    }
}
#endif
