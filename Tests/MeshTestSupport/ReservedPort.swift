#if canImport(Glibc)
import Glibc
#endif

/// A loopback port that stays closed while this value lives: bound (without SO_REUSEADDR)
/// but never listening, so connects to it are refused and no other socket of the
/// parallel suites can take it over (as can happen with a port bound and closed again).
public final class ReservedPort: Sendable {
    public let port: Int
    private let descriptor: Int32

    public struct Failed: Error { public var call: String; public var errno: Int32 }

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failed(call: "socket", errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            let error = errno
            close(fd)
            throw Failed(call: "bind", errno: error)
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}
