#if os(Linux)
import Glibc
import NIOConcurrencyHelpers

/// A file descriptor owned by one object and closed exactly once (explicitly
/// or when the owner goes); reads after the close see -1.
final class OwnedDescriptor: Sendable {
    private let value: NIOLockedValueBox<CInt>

    init(_ descriptor: CInt) { value = NIOLockedValueBox(descriptor) }

    deinit { close() }

    /// The descriptor, or -1 once closed.
    var current: CInt { value.withLockedValue { $0 } }

    /// Closes it (idempotent); `before` runs on the open descriptor first (for example a shutdown).
    func close(before: (CInt) -> Void = { _ in }) {
        let old = value.withLockedValue { fd -> CInt in
            defer { fd = -1 }
            return fd
        }
        guard old >= 0 else { return }
        before(old)
        Glibc.close(old)
    }
}
#endif
