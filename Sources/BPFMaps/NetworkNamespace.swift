#if os(Linux)
import CLibBPF
import Glibc

/// Runs netlink-based operations inside another network namespace by
/// switching the calling thread with `setns(2)` and switching it back.
enum NetworkNamespace {
    /// Runs `body` with the calling thread in the namespace at `path`
    /// (e.g. `/var/run/netns/NAME`); nil runs it in the current namespace.
    ///
    /// `body` must be synchronous: the thread is switched for exactly its duration.
    static func run<R>(in path: String?, _ body: () throws(BPFError) -> R) throws(BPFError) -> R {
        guard let path else { return try body() }
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else { throw .from(errno: errno, operation: "open current network namespace") }
        defer { Glibc.close(original) }
        let target = open(path, O_RDONLY | O_CLOEXEC)
        guard target >= 0 else {
            let err = errno
            throw err == ENOENT ? .fileNotFound(path: path) : .from(errno: err, operation: "open network namespace \(path)")
        }
        defer { Glibc.close(target) }
        let entered = swiftmesh_setns_net(target)
        guard entered == 0 else {
            throw .from(errno: -entered, operation: "enter network namespace \(path)", invalid: "path: not a network namespace")
        }
        defer {
            let back = swiftmesh_setns_net(original)
            if back != 0 {
                // A thread stuck in a foreign namespace would silently misroute
                // later work on it: stop rather than continue.
                fatalError("swift-mesh: cannot return to the original network namespace (errno \(-back))")
            }
        }
        return try body()
    }

    static func interfaceIndex(_ name: String) throws(BPFError) -> Int32 {
        let index = if_nametoindex(name)
        guard index != 0 else { throw .noSuchInterface(name: name) }
        return Int32(index)
    }
}
#endif
