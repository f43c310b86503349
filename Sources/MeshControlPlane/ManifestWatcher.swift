import Glibc

/// Reports changes under a manifest directory tree from inotify, so that an
/// edit is seen at once and an unchanged tree costs nothing (no periodic walk
/// over thousands of files).
///
/// Every directory of the tree is watched. A change to a manifest file
/// (`*.yaml`, `*.yml`) is reported by path; anything the file list alone cannot
/// follow (a directory created, removed or renamed, a hidden link or directory
/// such as a mounted ConfigMap's `..data` link being swapped, the kernel's event
/// queue overflowing) asks for a full re-read, which also watches new
/// directories. Hidden regular files (swap files, atomic writes' temporary
/// files) are ignored: the walk never reads them.
/// Not thread-safe: one thread owns it (``DirectoryClusterSource``'s watch thread).
final class ManifestWatcher {
    /// What the events since the last call say.
    struct Changes: Equatable {
        /// Manifest files created, written, renamed or removed.
        var files: Set<String> = []
        /// The tree must be walked again.
        var rescan = false

        var isEmpty: Bool { files.isEmpty && !rescan }

        mutating func merge(_ other: Changes) {
            files.formUnion(other.files)
            rescan = rescan || other.rescan
        }
    }

    /// Why the tree cannot be watched.
    struct WatchError: Error, CustomStringConvertible {
        let operation: String
        let errno: CInt
        var description: String { "\(operation): \(String(cString: strerror(errno)))" }
    }

    private let descriptor: CInt
    /// Watched directories by watch descriptor.
    private var directories: [CInt: String] = [:]
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    private static let mask = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB
        | IN_DELETE_SELF | IN_MOVE_SELF)

    init() throws(WatchError) {
        let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else { throw WatchError(operation: "inotify_init1", errno: errno) }
        self.descriptor = descriptor
    }

    deinit { Glibc.close(descriptor) }

    /// Watches `paths` (directories); already watched ones keep their watch.
    func watch(_ paths: [String]) throws(WatchError) {
        for path in paths {
            let watch = inotify_add_watch(descriptor, path, Self.mask)
            guard watch >= 0 else {
                // Gone between the walk and now: the events of its removal ask for a re-read.
                if errno == ENOENT || errno == ENOTDIR { continue }
                throw WatchError(operation: "inotify_add_watch \(path)", errno: errno)
            }
            directories[watch] = path
        }
    }

    /// Waits up to `milliseconds` for events (0: only what is queued) and returns what they say.
    func changes(waitingMilliseconds milliseconds: CInt) -> Changes {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, milliseconds) > 0 else { return Changes() }
        var changes = Changes()
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else {
                if count < 0, errno == EINTR { continue }
                break  // EAGAIN: drained
            }
            buffer.withUnsafeBytes { bytes in parse(bytes.prefix(count), into: &changes) }
        }
        return changes
    }

    private func parse(_ bytes: UnsafeRawBufferPointer.SubSequence, into changes: inout Changes) {
        let header = MemoryLayout<inotify_event>.size
        var offset = bytes.startIndex
        while offset + header <= bytes.endIndex {
            let watch = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            let nameBytes = bytes[(offset + header)..<min(offset + header + length, bytes.endIndex)]
            offset += header + length
            let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
            if mask & UInt32(IN_Q_OVERFLOW) != 0 || mask & UInt32(IN_ISDIR) != 0
                || mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED) != 0 {
                changes.rescan = true
                if mask & UInt32(IN_IGNORED) != 0 { directories[watch] = nil }
                continue
            }
            guard let directory = directories[watch], !name.isEmpty else { continue }
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            if name.hasPrefix(".") {
                // A hidden entry. A link or directory (a mounted ConfigMap swapping its `..data` link)
                // may change what visible names lead to, which only a re-read tells. A regular file
                // (an editor's swap file, the temporary file of an atomic write that is then renamed
                // to a visible name) changes nothing the walk reads: no walk of the tree for it.
                var info = stat()
                if lstat(path, &info) == 0, info.st_mode & S_IFMT != S_IFREG { changes.rescan = true }
            } else if ManifestTree.isManifestName(name) {
                changes.files.insert(path)
            }
        }
    }
}
