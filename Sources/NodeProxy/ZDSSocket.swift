#if os(Linux)
import CNodeSockets
import Glibc
import MeshProto
import SwiftProtobuf

/// Why a ZDS exchange failed.
public enum ZDSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A system call on the Unix socket failed.
    case system(operation: String, errno: Int32)
    /// The peer closed the connection.
    case closed
    /// A message did not fit the receive buffer (the peer sent more than ZDS messages are).
    case truncated
    /// A message was not the protobuf it should be.
    case malformed(String)
    /// The peer said something out of order (for example no ZdsHello first).
    case protocolViolation(String)
    /// The peer answered a request with an error (the Ack's text).
    case rejected(String)

    public var description: String {
        switch self {
        case .system(let operation, let errno): return "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case .closed: return "ZDS peer closed the connection"
        case .truncated: return "ZDS message larger than \(ZDSSocket.maximumMessageSize) bytes"
        case .malformed(let detail): return "malformed ZDS message: \(detail)"
        case .protocolViolation(let detail): return "ZDS protocol violation: \(detail)"
        case .rejected(let detail): return "ZDS request refused: \(detail)"
        }
    }
}

/// One end of a ZDS connection (Istio's ztunnel enrollment protocol): whole
/// protobuf messages over a Unix `SOCK_SEQPACKET` socket, one message per
/// packet, with a descriptor as `SCM_RIGHTS` ancillary data when the message
/// carries one (an AddWorkload's network namespace).
///
/// Calls block: run them on a thread you own (``NamespaceWorkers``), never on an event loop.
public final class ZDSSocket: Sendable {
    /// The largest message accepted; ZDS messages are a few hundred bytes.
    public static let maximumMessageSize = 64 * 1024
    /// Istio's default path.
    public static let defaultPath = "/var/run/ztunnel/ztunnel.sock"

    private let fd: OwnedDescriptor

    init(adopting descriptor: CInt) { fd = OwnedDescriptor(descriptor) }

    /// Connects to the node agent's socket at `path`.
    public static func connect(path: String) throws(ZDSError) -> ZDSSocket {
        let socket = try makeSocket()
        do {
            try withAddress(path) { address, length throws(ZDSError) in
                guard Glibc.connect(socket, address, length) == 0 else { throw .system(operation: "connect \(path)", errno: errno) }
            }
        } catch {
            Glibc.close(socket)
            throw error
        }
        return ZDSSocket(adopting: socket)
    }

    static func makeSocket() throws(ZDSError) -> CInt {
        let socket = swiftmesh_node_socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue))
        guard socket >= 0 else { throw .system(operation: "socket(AF_UNIX, SOCK_SEQPACKET)", errno: -socket) }
        return socket
    }

    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(ZDSError) -> R) throws(ZDSError) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw .system(operation: "socket path \(path) (longer than \(capacity - 1) bytes)", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let pointer = UnsafeMutablePointer<sockaddr_un>.allocate(capacity: 1)
        defer { pointer.deallocate() }
        pointer.initialize(to: address)
        return try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (raw) throws(ZDSError) -> R in
            try body(raw, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }

    /// Sends `message`, passing `descriptor` (not closed here) when given.
    public func send(_ message: some SwiftProtobuf.Message, passing descriptor: CInt? = nil) throws(ZDSError) {
        let bytes: [UInt8]
        do {
            bytes = try message.serializedBytes()
        } catch {
            throw .malformed("cannot encode \(type(of: message)): \(error)")
        }
        try send(bytes: bytes, passing: descriptor)
    }

    /// Sends raw bytes as one message (tests send malformed ones).
    package func send(bytes: [UInt8], passing descriptor: CInt? = nil) throws(ZDSError) {
        let socket = fd.current
        let sent = bytes.withUnsafeBytes { swiftmesh_node_send_with_fd(socket, $0.baseAddress, $0.count, descriptor ?? -1) }
        guard sent >= 0 else {
            if -sent == EPIPE || -sent == ECONNRESET { throw .closed }
            throw .system(operation: "sendmsg", errno: Int32(-sent))
        }
    }

    /// Receives one message; the caller owns the descriptor that came with it, if any.
    public func receive<M: SwiftProtobuf.Message>(_ type: M.Type) throws(ZDSError) -> (message: M, descriptor: CInt?) {
        var buffer = [UInt8](repeating: 0, count: Self.maximumMessageSize)
        var passed: CInt = -1
        var truncated: CInt = 0
        let socket = fd.current
        let count = buffer.withUnsafeMutableBytes { swiftmesh_node_receive_with_fd(socket, $0.baseAddress, $0.count, &passed, &truncated) }
        let descriptor: CInt? = passed >= 0 ? passed : nil
        guard count >= 0 else { throw .system(operation: "recvmsg", errno: Int32(-count)) }
        guard count > 0 else {
            if let descriptor { Glibc.close(descriptor) }
            throw .closed
        }
        guard truncated == 0 else {
            if let descriptor { Glibc.close(descriptor) }
            throw .truncated
        }
        do {
            return (try M(serializedBytes: Array(buffer[0..<count])), descriptor)
        } catch {
            if let descriptor { Glibc.close(descriptor) }
            throw .malformed("not a \(M.protoMessageName): \(error)")
        }
    }

    /// Wakes a blocked ``receive(_:)`` (it then fails with ``ZDSError/closed``).
    public func shutdown() {
        let socket = fd.current
        if socket >= 0 { Glibc.shutdown(socket, Int32(SHUT_RDWR)) }
    }

    /// Closes the socket (idempotent).
    public func close() { fd.close() }
}

/// A listening ZDS socket: the node agent's end, which ztunnels connect to.
public final class ZDSListener: Sendable {
    private let fd: OwnedDescriptor
    /// The socket's path.
    public let path: String

    /// Binds and listens at `path`, replacing a stale socket file left by a crash.
    public init(path: String) throws(ZDSError) {
        let socket = try ZDSSocket.makeSocket()
        unlink(path)
        do {
            try ZDSSocket.withAddress(path) { address, length throws(ZDSError) in
                guard bind(socket, address, length) == 0 else { throw .system(operation: "bind \(path)", errno: errno) }
            }
            guard listen(socket, 16) == 0 else { throw ZDSError.system(operation: "listen \(path)", errno: errno) }
        } catch {
            Glibc.close(socket)
            throw error as! ZDSError
        }
        fd = OwnedDescriptor(socket)
        self.path = path
    }

    deinit { close() }

    /// Waits for the next connection (blocking).
    public func accept() throws(ZDSError) -> ZDSSocket {
        let socket = fd.current
        let connection = swiftmesh_node_accept(socket)
        if connection >= 0 { return ZDSSocket(adopting: connection) }
        if -connection == EINVAL || -connection == EBADF { throw .closed }
        throw .system(operation: "accept on \(path)", errno: -connection)
    }

    /// Stops listening, wakes a blocked ``accept()`` and removes the socket file.
    public func close() {
        let path = self.path
        fd.close { socket in
            Glibc.shutdown(socket, Int32(SHUT_RDWR))
            unlink(path)
        }
    }
}
#endif
