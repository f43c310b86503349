/// An error from BPFMaps: every failure of a BPF system call or of libbpf is
/// mapped to a typed case whose description says what went wrong and what
/// to do about it.
///
/// Match on the cases (`catch BPFError.keyNotFound`) rather than on the
/// description, which is meant for people.
public enum BPFError: Error, Sendable, Hashable, CustomStringConvertible {
    /// EPERM / EACCES: the process lacks the privilege for `operation`.
    case permissionDenied(operation: String)
    /// ENOENT on a map element operation: the key is not in the map.
    case keyNotFound(operation: String)
    /// ENOENT when opening a pinned object: nothing is pinned at `path`.
    case pinNotFound(path: String)
    /// EEXIST: an update with `.noExist` found the key already present, or a pin exists.
    case keyExists(operation: String)
    /// E2BIG (or ENOSPC): the map already holds `maxEntries` elements.
    case mapFull(operation: String)
    /// EINVAL: the kernel rejected `argument` of `operation`.
    case invalidArgument(operation: String, argument: String)
    /// A key whose size differs from the map's key size (caught before the system call).
    case keySizeMismatch(expected: Int, actual: Int)
    /// A value whose size differs from the map's value size (caught before the system call).
    case valueSizeMismatch(expected: Int, actual: Int)
    /// A pinned map exists at `path` but its type, sizes or flags differ from the spec.
    case incompatible(path: String, reason: String)
    /// EOPNOTSUPP / ENOTSUPP: the kernel or the map type does not support `operation`.
    case notSupported(operation: String)
    /// EBUSY: the object is in use (for example a tc filter with the same handle).
    case busy(operation: String)
    /// The map, program or attachment was already closed.
    case closed(String)
    /// The directory for a pin is not on a BPF file system.
    case notBPFFileSystem(path: String)
    /// A file (object file, cgroup, network namespace) does not exist.
    case fileNotFound(path: String)
    /// No map or program with this name in the object.
    case notFoundInObject(kind: String, name: String, object: String)
    /// The kernel (verifier) or libbpf refused to load the object.
    case loadFailed(object: String, errno: Int32)
    /// No network interface with this name (in the given network namespace).
    case noSuchInterface(name: String)
    /// Any other errno from `operation`.
    case system(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .permissionDenied(let op):
            return "\(op): permission denied; BPF needs root or CAP_BPF (plus CAP_NET_ADMIN for tc, CAP_SYS_ADMIN for cgroups and pins)"
        case .keyNotFound(let op):
            return "\(op): key not found in the map"
        case .pinNotFound(let path):
            return "no pinned BPF object at \(path): create and pin it first (MapSpec pinning), or check that bpffs is mounted (mount -t bpf bpf /sys/fs/bpf)"
        case .keyExists(let op):
            return "\(op): key already exists (update with .any to overwrite)"
        case .mapFull(let op):
            return "\(op): map is full; delete entries or create the map with a larger maxEntries"
        case .invalidArgument(let op, let arg):
            return "\(op): invalid argument: \(arg)"
        case .keySizeMismatch(let expected, let actual):
            return "key is \(actual) bytes but the map's key size is \(expected) bytes: use the key type the map was created with"
        case .valueSizeMismatch(let expected, let actual):
            return "value is \(actual) bytes but the map's value size is \(expected) bytes: use the value type the map was created with"
        case .incompatible(let path, let reason):
            return "pinned map at \(path) is incompatible with the spec (\(reason)): remove the pin (rm \(path)) or use a matching spec"
        case .notSupported(let op):
            return "\(op): not supported by this kernel or map type"
        case .busy(let op):
            return "\(op): resource busy (already attached or in use)"
        case .closed(let what):
            return "\(what) was already closed"
        case .notBPFFileSystem(let path):
            return "\(path) is not on a BPF file system: mount it with mount -t bpf bpf /sys/fs/bpf"
        case .fileNotFound(let path):
            return "no such file: \(path)"
        case .notFoundInObject(let kind, let name, let object):
            return "no \(kind) named \(name) in \(object)"
        case .loadFailed(let object, let errno):
            return "loading \(object) failed (\(BPFError.errnoName(errno))); the verifier log is logged at level error under the label swift-mesh.libbpf"
        case .noSuchInterface(let name):
            return "no network interface named \(name)"
        case .system(let op, let errno):
            return "\(op): \(BPFError.errnoName(errno))"
        }
    }

    /// Maps an errno from a map or object operation to a typed error.
    ///
    /// - Parameters:
    ///   - errno: the positive errno.
    ///   - operation: what was attempted, for the message.
    ///   - invalid: which argument an EINVAL most likely refers to.
    @usableFromInline
    static func from(errno: Int32, operation: String, invalid: String = "see the operation's documentation") -> BPFError {
        switch errno {
        case 1, 13: return .permissionDenied(operation: operation) // EPERM, EACCES
        case 2: return .keyNotFound(operation: operation) // ENOENT
        case 17: return .keyExists(operation: operation) // EEXIST
        case 7, 28: return .mapFull(operation: operation) // E2BIG, ENOSPC
        case 22: return .invalidArgument(operation: operation, argument: invalid) // EINVAL
        case 95, 524: return .notSupported(operation: operation) // EOPNOTSUPP, ENOTSUPP
        case 16: return .busy(operation: operation) // EBUSY
        case 9: return .closed(operation) // EBADF
        default: return .system(operation: operation, errno: errno)
        }
    }

    static func errnoName(_ errno: Int32) -> String {
        let names: [Int32: String] = [
            1: "EPERM", 2: "ENOENT", 3: "ESRCH", 7: "E2BIG", 9: "EBADF", 12: "ENOMEM",
            13: "EACCES", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV", 22: "EINVAL",
            24: "EMFILE", 28: "ENOSPC", 95: "EOPNOTSUPP", 524: "ENOTSUPP",
        ]
        return names[errno].map { "\($0) (\(errno))" } ?? "errno \(errno)"
    }
}
