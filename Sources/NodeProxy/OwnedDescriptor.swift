#if os(Linux)
import Glibc
import Synchronization

/// A file descriptor owned by one object and closed exactly once (explicitly
/// or when the owner goes); reads after the close see -1.
final class OwnedDescriptor: Sendable {
    private let value: Mutex<CInt>

    init(_ descriptor: CInt) { value = Mutex(descriptor) }

    deinit { close() }

    /// The descriptor, or -1 once closed.
    var current: CInt { value.withLock { $0 } }

    /// Closes it (idempotent); `before` runs on the open descriptor first (for example a shutdown).
    func close(before: (CInt) -> Void = { _ in }) {
        let old = value.withLock { fd -> CInt in
            defer { fd = -1 }
            return fd
        }
        guard old >= 0 else { return }
        before(old)
        Glibc.close(old)
    }
}
#endif
