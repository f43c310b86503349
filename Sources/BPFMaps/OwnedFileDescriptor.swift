#if os(Linux)
import Glibc
import Synchronization

/// A file descriptor that one object owns and closes exactly once.
///
/// Every use goes through ``withFD(_:_:)`` under a lock, so `close()` can never
/// race with a system call on the same descriptor number.
@usableFromInline
final class OwnedFileDescriptor: Sendable {
    @usableFromInline let state: Mutex<Int32>
    @usableFromInline let what: String

    init(_ fd: Int32, what: String) {
        state = Mutex(fd)
        self.what = what
    }

    deinit {
        state.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    /// Runs `body` with the descriptor; throws ``BPFError/closed(_:)`` after close.
    @inlinable
    func withFD<R>(_ body: (Int32) throws(BPFError) -> R) throws(BPFError) -> R {
        try state.withLock { (fd: inout Int32) throws(BPFError) -> R in
            guard fd >= 0 else { throw BPFError.closed(what) }
            return try body(fd)
        }
    }

    /// Closes the descriptor; later calls do nothing.
    func close() {
        state.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    var isClosed: Bool { state.withLock { $0 < 0 } }
}

/// `errno` of the last failed libc call.
@inline(__always) func lastErrno() -> Int32 { errno }

/// A duplicate of `fd` with close-on-exec.
func duplicate(_ fd: Int32, what: String) throws(BPFError) -> Int32 {
    let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
    guard copy >= 0 else { throw BPFError.system(operation: "dup \(what)", errno: errno) }
    return copy
}
#endif
