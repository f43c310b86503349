#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What tells a manifest file's content changed without reading it.
public struct FileStamp: Hashable, Sendable {
    public var size: Int64
    /// Modification time in nanoseconds since the epoch.
    public var modified: Int64
    public var inode: UInt64
}

/// A walk of a manifest directory with plain `readdir`/`stat`: fast enough to
/// repeat every poll over thousands of files (where inotify is unavailable), and
/// the full re-read ``ManifestWatcher`` falls back to.
enum ManifestTree {
    struct ScanError: Error {
        let message: String
    }

    static func scan(_ directory: String) throws(ScanError) -> [String: FileStamp] {
        var directories: [String] = []
        return try scan(directory, directories: &directories)
    }

    /// Scans as ``scan(_:)`` does and appends every directory walked (the root first) to `directories`.
    static func scan(_ directory: String, directories: inout [String]) throws(ScanError) -> [String: FileStamp] {
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw ScanError(message: "not a directory")
        }
        var found: [String: FileStamp] = [:]
        var visited: Set<[UInt64]> = [[UInt64(info.st_dev), UInt64(info.st_ino)]]
        try walk(directory, into: &found, directories: &directories, visited: &visited)
        return found
    }

    /// The stamp of the manifest file at `path`, or nil if it is no longer a regular file
    /// (following links, as the walk does).
    static func stamp(_ path: String) -> FileStamp? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        #if canImport(Darwin)
        let modified = info.st_mtimespec
        #else
        let modified = info.st_mtim
        #endif
        return FileStamp(size: Int64(info.st_size), modified: Int64(modified.tv_sec) * 1_000_000_000 + Int64(modified.tv_nsec),
                         inode: UInt64(info.st_ino))
    }

    /// Whether a file name is one the walk reads: `*.yaml` or `*.yml`, not hidden.
    static func isManifestName(_ name: some StringProtocol) -> Bool {
        !name.hasPrefix(".") && (name.hasSuffix(".yaml") || name.hasSuffix(".yml"))
    }

    private static func walk(_ directory: String, into found: inout [String: FileStamp], directories: inout [String],
                             visited: inout Set<[UInt64]>) throws(ScanError) {
        directories.append(directory)
        guard let handle = opendir(directory) else { throw ScanError(message: "cannot list \(directory): \(String(cString: strerror(errno)))") }
        defer { closedir(handle) }
        var subdirectories: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            guard !name.hasPrefix(".") else { continue }
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            // The entry's type from readdir saves a system call per file; only an unknown type needs lstat.
            var type = entry.pointee.d_type
            if type == UInt8(DT_UNKNOWN) {
                var link = stat()
                guard lstat(path, &link) == 0 else { continue }
                type = link.st_mode & S_IFMT == S_IFDIR ? UInt8(DT_DIR) : UInt8(DT_REG)
            }
            if type == UInt8(DT_DIR) || type == UInt8(DT_LNK) {
                // A directory, or a link to one (a mounted ConfigMap's nested items), walked once.
                var target = stat()
                if stat(path, &target) == 0, target.st_mode & S_IFMT == S_IFDIR {
                    if visited.insert([UInt64(target.st_dev), UInt64(target.st_ino)]).inserted { subdirectories.append(path) }
                    continue
                }
                if type == UInt8(DT_DIR) { continue }
            }
            guard isManifestName(name), let stamp = stamp(path) else { continue }
            found[path] = stamp
        }
        for subdirectory in subdirectories { try walk(subdirectory, into: &found, directories: &directories, visited: &visited) }
    }
}
