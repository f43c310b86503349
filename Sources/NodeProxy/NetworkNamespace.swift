#if os(Linux)
import CNodeSockets
import Glibc
import NIOCore
import NIOPosix

/// An open network namespace: a descriptor of `/var/run/netns/NAME`,
/// `/proc/PID/ns/net`, or one received over ZDS. Closing it (explicitly, or
/// when the last reference goes) releases the namespace only if nothing else
/// holds it.
///
/// Sockets are made inside the namespace by a thread that enters it with
/// `setns(2)` (which moves only the calling thread), creates the socket (a
/// socket keeps the namespace it was created in) and returns to its own
/// namespace before it does anything else.
public final class NetworkNamespace: Sendable {
    /// A connect begun by ``startConnect(to:mark:)``.
    enum PendingConnect {
        /// Connected: the socket is ready for use.
        case connected(CInt)
        /// Still connecting: ``finishConnect(_:to:timeout:)`` waits for it.
        case inProgress(CInt)
    }

    private let fd: OwnedDescriptor
    /// A short name for logs (the pod, or the path).
    public let name: String

    /// Adopts `descriptor` (it is closed with this object).
    public init(adopting descriptor: CInt, name: String) {
        self.fd = OwnedDescriptor(descriptor)
        self.name = name
    }

    /// Opens the namespace at `path` (for example `/var/run/netns/NAME`).
    public static func open(path: String) throws(CaptureError) -> NetworkNamespace {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system(operation: "open \(path)", errno: errno) }
        return NetworkNamespace(adopting: descriptor, name: path)
    }

    /// The descriptor (-1 once closed); valid only while this object is open.
    public var descriptor: CInt { fd.current }

    /// Closes the descriptor (idempotent).
    public func close() { fd.close() }

    /// The process's own namespace, where every thread is outside ``enter(_:)``: opened at
    /// the first call and kept, so that an entry costs no `open(2)`. In-pod capture opens it
    /// when it is made, so that the descriptor is there before any pod is (and in any count
    /// of the process's descriptors taken once it is ready).
    static func home() throws(CaptureError) -> CInt {
        let descriptor = swiftmesh_node_home_netns()
        guard descriptor >= 0 else { throw .system(operation: "open /proc/thread-self/ns/net", errno: -descriptor) }
        return descriptor
    }

    /// Runs `body` on the calling thread while it is inside this namespace, then
    /// returns the thread to the process's own namespace (``home()``; threads change
    /// namespace only here, so that is the one it was in). `body` must not block or
    /// suspend: nothing else may run on the thread while it is in the pod's namespace.
    func enter<R>(_ body: () throws(CaptureError) -> R) throws(CaptureError) -> R {
        let original = try Self.home()
        let target = descriptor
        guard target >= 0 else { throw .notANetworkNamespace("\(name) (closed)") }
        let entered = swiftmesh_node_setns_net(target)
        guard entered == 0 else {
            if -entered == EINVAL { throw .notANetworkNamespace(name) }
            throw .system(operation: "setns into \(name)", errno: -entered)
        }
        defer {
            let back = swiftmesh_node_setns_net(original)
            if back != 0 {
                // A worker left in a pod's namespace would make later sockets there: stop instead.
                fatalError("swift-mesh: cannot return to the original network namespace (errno \(-back))")
            }
        }
        return try body()
    }

    /// The namespace's IPv4 addresses outside loopback (the pod's IPs).
    func ipv4Addresses() throws(CaptureError) -> [String] {
        try enter { () throws(CaptureError) -> [String] in
            var list: UnsafeMutablePointer<ifaddrs>?
            guard getifaddrs(&list) == 0 else { throw .system(operation: "getifaddrs in \(name)", errno: errno) }
            defer { freeifaddrs(list) }
            var addresses: [String] = []
            var entry = list
            while let current = entry {
                defer { entry = current.pointee.ifa_next }
                guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                      current.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0 else { continue }
                addresses.append(address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { ipv4Text($0.pointee.sin_addr) })
            }
            return addresses
        }
    }

    /// A TCP socket bound to `0.0.0.0:port` and listening, made in this namespace,
    /// with SO_REUSEPORT so that a second proxy (an upgrade) can bind beside this one.
    /// `loopback` binds `127.0.0.1` instead (the DNS proxy: the OUTPUT chain's REDIRECT sends
    /// there, and UDP answers must come from that address for conntrack to undo the redirect).
    func tcpListener(port: Int, loopback: Bool = false, backlog: CInt = 1024) throws(CaptureError) -> CInt {
        try boundSocket(type: Int32(SOCK_STREAM.rawValue), port: port, loopback: loopback, backlog: backlog)
    }

    /// A UDP socket bound to `0.0.0.0:port` (or `127.0.0.1:port`), made in this namespace (SO_REUSEPORT as for TCP).
    func udpSocket(port: Int, loopback: Bool = false) throws(CaptureError) -> CInt {
        try boundSocket(type: Int32(SOCK_DGRAM.rawValue), port: port, loopback: loopback, backlog: nil)
    }

    private func boundSocket(type: CInt, port: Int, loopback: Bool, backlog: CInt?) throws(CaptureError) -> CInt {
        let socket = try enter { () throws(CaptureError) -> CInt in
            let socket = swiftmesh_node_socket(AF_INET, type)
            guard socket >= 0 else { throw .system(operation: "socket in \(name)", errno: -socket) }
            return socket
        }
        do {
            try setInt(socket, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
            try setInt(socket, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT")
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr = in_addr(s_addr: loopback ? UInt32(INADDR_LOOPBACK).bigEndian : INADDR_ANY)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                let error = errno
                throw error == EADDRINUSE ? CaptureError.portInUse(port: port, pod: name) : .system(operation: "bind port \(port) in \(name)", errno: error)
            }
            if let backlog, listen(socket, backlog) != 0 { throw CaptureError.system(operation: "listen on port \(port) in \(name)", errno: errno) }
            return socket
        } catch {
            Glibc.close(socket)
            throw error as! CaptureError
        }
    }

    /// A TCP connect started from inside this namespace: a socket made there, marked `mark`
    /// (SO_MARK, so the pod's capture rules let it pass), its non-blocking connect to
    /// `destination` begun. Nothing here blocks, so it may run on an event loop: the thread is
    /// inside the namespace only for `socket(2)`. If the handshake has completed by the time
    /// `connect(2)` returns (a local peer can answer within the call), the result is
    /// ``PendingConnect/connected``; otherwise ``finishConnect(_:to:timeout:)`` waits.
    func startConnect(to destination: SocketAddress, mark: UInt32) throws(CaptureError) -> PendingConnect {
        let family = destination.protocol == .inet6 ? AF_INET6 : AF_INET
        let socket = try enter { () throws(CaptureError) -> CInt in
            let socket = swiftmesh_node_socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
            guard socket >= 0 else { throw .system(operation: "socket in \(name)", errno: -socket) }
            return socket
        }
        do {
            try setInt(socket, SOL_SOCKET, SO_MARK, CInt(bitPattern: mark), "SO_MARK")
            let started = destination.withSockAddr { address, length in Glibc.connect(socket, address, socklen_t(length)) }
            if started == 0 { return .connected(socket) }
            guard errno == EINPROGRESS else { throw CaptureError.system(operation: "connect to \(destination) from \(name)", errno: errno) }
            return try connectResult(socket, to: destination, waitingMilliseconds: 0) ? .connected(socket) : .inProgress(socket)
        } catch {
            Glibc.close(socket)
            throw error as! CaptureError
        }
    }

    /// Waits up to `timeout` for the connect in progress on `socket` (blocking: on a worker, never
    /// on an event loop) and returns the socket once connected; closes it and throws if the connect
    /// fails or times out.
    func finishConnect(_ socket: CInt, to destination: SocketAddress, timeout: TimeAmount) throws(CaptureError) -> CInt {
        do {
            let milliseconds = CInt(clamping: max(1, timeout.nanoseconds / 1_000_000))
            guard try connectResult(socket, to: destination, waitingMilliseconds: milliseconds) else {
                throw CaptureError.connectTimedOut(destination: "\(destination)")
            }
            return socket
        } catch {
            Glibc.close(socket)
            throw error as! CaptureError
        }
    }

    /// Whether the non-blocking connect on `socket` has completed within `milliseconds` (0: now);
    /// throws its error if it failed.
    private func connectResult(_ socket: CInt, to destination: SocketAddress, waitingMilliseconds milliseconds: CInt) throws(CaptureError) -> Bool {
        let ready = swiftmesh_node_poll(socket, Int16(POLLOUT), milliseconds)
        guard ready >= 0 else { throw .system(operation: "poll connect to \(destination)", errno: -ready) }
        guard ready > 0 else { return false }
        var error: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else {
            throw .system(operation: "SO_ERROR", errno: errno)
        }
        guard error == 0 else { throw .system(operation: "connect to \(destination) from \(name)", errno: error) }
        return true
    }

    private func setInt(_ socket: CInt, _ level: CInt, _ option: CInt, _ value: CInt, _ label: String) throws(CaptureError) {
        var value = value
        guard setsockopt(socket, level, option, &value, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
            throw .system(operation: "setsockopt \(label)", errno: errno)
        }
    }
}

/// The threads on which sockets are made inside pod namespaces: blocking work
/// (namespace switches, connects up to their timeout) never runs on an event loop.
public final class NamespaceWorkers: Sendable {
    private let pool: NIOThreadPool

    /// Starts `threads` workers.
    public init(threads: Int = 8) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    /// Runs `body` on a worker.
    func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await pool.runIfActive(body)
    }

    /// Stops the workers once their work is done.
    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
#endif
