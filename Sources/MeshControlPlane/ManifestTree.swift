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
/// repeat every poll over thousands of files.
enum ManifestTree {
    struct ScanError: Error {
        let message: String
    }

    static func scan(_ directory: String) throws(ScanError) -> [String: FileStamp] {
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw ScanError(message: "not a directory")
        }
        var found: [String: FileStamp] = [:]
        try walk(directory, into: &found)
        return found
    }

    private static func walk(_ directory: String, into found: inout [String: FileStamp]) throws(ScanError) {
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
            if type == UInt8(DT_DIR) {
                subdirectories.append(path)
                continue
            }
            guard name.hasSuffix(".yaml") || name.hasSuffix(".yml") else { continue }
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            found[path] = FileStamp(size: Int64(info.st_size), modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                                    inode: UInt64(info.st_ino))
        }
        for subdirectory in subdirectories { try walk(subdirectory, into: &found) }
    }
}
