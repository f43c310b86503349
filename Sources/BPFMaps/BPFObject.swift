#if os(Linux)
import CLibBPF
import Glibc
import Logging

/// An eBPF object file (`clang -target bpf` output) opened with libbpf:
/// open, optionally reuse maps, load, then take maps and programs by name.
///
/// Maps declared with `__uint(pinning, LIBBPF_PIN_BY_NAME)` are pinned under
/// `pinRoot` at load, and an existing pin there is reused, so several loaded
/// objects (one per workload) share them; an existing pin whose type or sizes
/// differ is refused with ``BPFError/incompatible(path:reason:)`` before load.
///
/// ``map(named:)`` and ``program(named:)`` return handles with their own file
/// descriptors, so the object can be closed once they are taken. Not
/// `Sendable`: use it from one task, then share the maps and programs.
public final class BPFObject {
    /// The object file path.
    public let path: String
    /// Directory for maps pinned by name, if any.
    public let pinRoot: String?
    private var object: OpaquePointer?
    private let logger: Logger
    /// Whether ``load()`` succeeded.
    public private(set) var isLoaded = false

    private init(path: String, pinRoot: String?, object: OpaquePointer, logger: Logger) {
        self.path = path
        self.pinRoot = pinRoot
        self.object = object
        self.logger = logger
    }

    deinit { close() }

    /// Opens (parses) the object at `path`; `pinRoot` is the directory for
    /// pinned-by-name maps (created if missing). Without one, libbpf pins them
    /// directly under `/sys/fs/bpf`, shared by every object loaded that way.
    public static func open(_ path: String, pinRoot: String? = nil, logger: Logger = Logger(label: "swift-mesh.bpf")) throws(BPFError) -> BPFObject {
        _ = LibBPFLogging.installed
        guard access(path, R_OK) == 0 else { throw .fileNotFound(path: path) }
        if let pinRoot { try BPFFileSystem.createDirectory(pinRoot) }
        let obj: OpaquePointer? = path.withCString { p in
            if let pinRoot { return pinRoot.withCString { swiftmesh_object_open(p, $0) } }
            return swiftmesh_object_open(p, nil)
        }
        guard let obj else {
            throw .from(errno: errno, operation: "open BPF object \(path)", invalid: "not a valid BPF ELF object")
        }
        return BPFObject(path: path, pinRoot: pinRoot, object: obj, logger: logger)
    }

    private func handle() throws(BPFError) -> OpaquePointer {
        guard let object else { throw .closed("BPF object \(path)") }
        return object
    }

    /// Names of the maps the object declares.
    public var mapNames: [String] {
        guard let object else { return [] }
        var names: [String] = []
        var m = bpf_object__next_map(object, nil)
        while let map = m {
            names.append(String(cString: bpf_map__name(map)))
            m = bpf_object__next_map(object, map)
        }
        return names
    }

    /// Names of the programs the object declares.
    public var programNames: [String] {
        guard let object else { return [] }
        var names: [String] = []
        var p = bpf_object__next_program(object, nil)
        while let prog = p {
            names.append(String(cString: bpf_program__name(prog)))
            p = bpf_object__next_program(object, prog)
        }
        return names
    }

    private func findMap(_ name: String) throws(BPFError) -> OpaquePointer {
        guard let m = bpf_object__find_map_by_name(try handle(), name) else {
            throw .notFoundInObject(kind: "map", name: name, object: path)
        }
        return m
    }

    /// Makes the object use `map` for its map `name` instead of creating one (before ``load()``).
    public func reuse(_ map: BPFMap, forMapNamed name: String) throws(BPFError) {
        let m = try findMap(name)
        guard !isLoaded else { throw .invalidArgument(operation: "reuse map \(name)", argument: "object is already loaded") }
        try checkCompatible(mapInObject: m, with: map.info, path: map.pinPath ?? "map \(map.info.name)")
        try map.withFileDescriptor { fd throws(BPFError) in
            let rc = bpf_map__reuse_fd(m, fd)
            guard rc == 0 else { throw .from(errno: -rc, operation: "reuse map \(name)", invalid: "map") }
        }
    }

    private func checkCompatible(mapInObject m: OpaquePointer, with info: MapInfo, path: String) throws(BPFError) {
        var reasons: [String] = []
        let type = MapType(rawValue: bpf_map__type(m).rawValue)
        if info.type != type { reasons.append("type \(info.type) != \(type)") }
        if info.keySize != bpf_map__key_size(m) { reasons.append("key size \(info.keySize) != \(bpf_map__key_size(m))") }
        if info.valueSize != bpf_map__value_size(m) { reasons.append("value size \(info.valueSize) != \(bpf_map__value_size(m))") }
        if info.maxEntries != bpf_map__max_entries(m) { reasons.append("max entries \(info.maxEntries) != \(bpf_map__max_entries(m))") }
        if !reasons.isEmpty { throw .incompatible(path: path, reason: reasons.joined(separator: ", ")) }
    }

    /// Loads every program and creates (or reuses) every map. Afterwards the
    /// pinned-by-name maps exist under ``pinRoot``.
    public func load() throws(BPFError) {
        let obj = try handle()
        guard !isLoaded else { return }
        // Refuse incompatible pins with a typed error instead of libbpf's EINVAL.
        var m = bpf_object__next_map(obj, nil)
        while let map = m {
            if let pinPath = bpf_map__pin_path(map).map({ String(cString: $0) }), access(pinPath, F_OK) == 0 {
                let existing = try BPFMap.openPinned(pinPath, logger: logger)
                defer { existing.close() }
                try checkCompatible(mapInObject: map, with: existing.info, path: pinPath)
            }
            m = bpf_object__next_map(obj, map)
        }
        let rc = bpf_object__load(obj)
        guard rc == 0 else {
            let err = -rc
            if err == EPERM || err == EACCES { throw .permissionDenied(operation: "load BPF object \(path)") }
            throw .loadFailed(object: path, errno: err)
        }
        isLoaded = true
        logger.debug("loaded BPF object", metadata: ["path": "\(path)", "maps": "\(mapNames)", "programs": "\(programNames)"])
    }

    /// The loaded map `name`, as a handle with its own file descriptor.
    public func map(named name: String) throws(BPFError) -> BPFMap {
        let m = try findMap(name)
        guard isLoaded else { throw .invalidArgument(operation: "map \(name)", argument: "object is not loaded: call load() first") }
        let fd = bpf_map__fd(m)
        guard fd >= 0 else { throw .from(errno: -fd, operation: "map \(name) fd") }
        let pin = bpf_map__pin_path(m).map { String(cString: $0) }
        return try BPFMap(fd: try duplicate(fd, what: "map \(name)"), pinPath: pin, logger: logger)
    }

    /// The loaded program `name` (the C function name), with its own file descriptor.
    public func program(named name: String) throws(BPFError) -> BPFProgram {
        guard let p = bpf_object__find_program_by_name(try handle(), name) else {
            throw .notFoundInObject(kind: "program", name: name, object: path)
        }
        guard isLoaded else { throw .invalidArgument(operation: "program \(name)", argument: "object is not loaded: call load() first") }
        let fd = bpf_program__fd(p)
        guard fd >= 0 else { throw .from(errno: -fd, operation: "program \(name) fd") }
        return try BPFProgram(
            fd: try duplicate(fd, what: "program \(name)"), name: name,
            section: String(cString: bpf_program__section_name(p)),
            programType: bpf_program__type(p).rawValue,
            expectedAttachType: bpf_program__expected_attach_type(p).rawValue
        )
    }

    /// Frees libbpf's object; maps and programs taken from it stay valid.
    public func close() {
        if let object { bpf_object__close(object) }
        object = nil
    }
}
#endif
