import BPFMaps
import Foundation
import Testing

#if os(Linux)
import Glibc

/// What the privileged tests need, probed once.
enum Environment {
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// Root with CAP_BPF: probed by actually creating a tiny map.
    static let canUseBPF: Bool = {
        guard geteuid() == 0 else { return false }
        return (try? BPFMap.create(MapSpec(name: "probe", type: .array, keySize: 4, valueSize: 4, maxEntries: 1))) != nil
    }()

    static let bpffsMounted = BPFFileSystem.isBPFFS("/sys/fs/bpf")
    static let hasIP = FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
    static let hasBPFTool = FileManager.default.isExecutableFile(atPath: "/usr/sbin/bpftool")
    /// The cgroup v2 root: $MESH_CGROUP2_PATH, else /sys/fs/cgroup on a unified
    /// hierarchy, else the hybrid layout's /sys/fs/cgroup/unified.
    static let cgroup2: String = {
        if let path = ProcessInfo.processInfo.environment["MESH_CGROUP2_PATH"] { return path }
        if FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") { return "/sys/fs/cgroup" }
        return "/sys/fs/cgroup/unified"
    }()
    static let hasCgroup2 = FileManager.default.fileExists(atPath: cgroup2 + "/cgroup.procs")

    /// Root with CAP_BPF and a mounted bpffs.
    static let privileged = canUseBPF && bpffsMounted
    /// Everything the datapath tests use.
    static let datapath = privileged && hasIP

    static let skipReason: Comment = "needs root with CAP_BPF/CAP_NET_ADMIN/CAP_SYS_ADMIN and bpffs at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf); run the tests as root"

    /// Repository root, from this file's real path (the dev package may symlink it).
    static let repositoryRoot: String = {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX))
        let path = realpath(#filePath, &resolved) != nil ? String(decoding: resolved.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : #filePath
        return URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }()

    /// Where scripts/build-bpf put the objects: $MESH_BPF_OBJECT_DIR or <repo>/.build/bpf.
    static let objectDirectory: String = ProcessInfo.processInfo.environment["MESH_BPF_OBJECT_DIR"] ?? repositoryRoot + "/.build/bpf"

    /// Path of a compiled object; records an issue telling how to build it when missing.
    static func object(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let path = objectDirectory + "/" + name + ".o"
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("BPF object \(path) is missing: run scripts/build-bpf (or set MESH_BPF_OBJECT_DIR) before swift test", sourceLocation: sourceLocation)
            throw MissingObject(path: path)
        }
        return path
    }

    struct MissingObject: Error { let path: String }
}

/// A unique, short suffix for names of pins, namespaces, interfaces and cgroups.
func uniqueSuffix() -> String {
    String(UInt32.random(in: 0...UInt32.max), radix: 36)
}

/// A directory on bpffs removed (with everything pinned in it) on `remove()`.
final class PinDirectory {
    let path: String
    init() throws {
        path = "/sys/fs/bpf/swift-mesh-test-" + uniqueSuffix()
        try BPFFileSystem.createDirectory(path)
    }
    func remove() { BPFFileSystem.removeTree(path) }
}

/// Output of a finished command.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `argv` to completion.
@discardableResult
func run(_ argv: [String]) throws -> CommandResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

/// Runs `argv` and requires exit status 0.
@discardableResult
func runChecked(_ argv: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let r = try run(argv)
    guard r.status == 0 else {
        Issue.record("\(argv.joined(separator: " ")) failed (\(r.status)): \(r.stderr)", sourceLocation: sourceLocation)
        throw CommandFailed(command: argv.joined(separator: " "))
    }
    return r.stdout
}

struct CommandFailed: Error { let command: String }

/// Number of open file descriptors of this process that refer to BPF objects
/// (maps, programs, links): other test targets running in parallel never open
/// those, so the count is stable while this suite runs serialized.
func bpfDescriptorCount() -> Int {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return fds.filter { fd in
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd)) ?? ""
        return target.hasPrefix("anon_inode:bpf")
    }.count
}

/// Decodes bpftool's hex byte strings ("0x0a").
func hexBytes(_ any: Any?) -> [UInt8] {
    (any as? [String] ?? []).compactMap { UInt8($0.dropFirst(2), radix: 16) }
}

/// `bpftool map dump pinned PATH -j` as (key bytes, value bytes) pairs;
/// per-CPU maps give the concatenation of every CPU's value.
func bpftoolDump(_ path: String) throws -> [(key: [UInt8], value: [UInt8])] {
    let json = try runChecked(["bpftool", "map", "dump", "pinned", path, "-j"])
    let entries = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
    return entries.map { e in
        if let values = e["values"] as? [[String: Any]] {
            let sorted = values.sorted { ($0["cpu"] as? Int ?? 0) < ($1["cpu"] as? Int ?? 0) }
            return (hexBytes(e["key"]), sorted.flatMap { hexBytes($0["value"]) })
        }
        return (hexBytes(e["key"]), hexBytes(e["value"]))
    }
}

/// `bpftool map show pinned PATH -j`.
func bpftoolShow(_ path: String) throws -> [String: Any] {
    let json = try runChecked(["bpftool", "map", "show", "pinned", path, "-j"])
    return try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
}

func bytes<T: BPFMapRepresentable>(_ value: T) -> [UInt8] {
    value.withBPFBytes { Array($0) }
}
#endif

struct BadAddress: Error { let text: String }

/// Parses a test address, throwing on a typo.
func addr(_ text: String) throws -> IPAddressBytes {
    guard let a = IPAddressBytes(text) else { throw BadAddress(text: text) }
    return a
}

