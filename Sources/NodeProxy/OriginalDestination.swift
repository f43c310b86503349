#if os(Linux)
import Glibc
import NIOCore
import NIOPosix

/// The destination a connection had before a REDIRECT rule sent it to a
/// proxy port (`SO_ORIGINAL_DST`, kept by conntrack). IPv4 only.
enum OriginalDestination {
    /// `SO_ORIGINAL_DST` from `linux/netfilter_ipv4.h`.
    static let option = NIOBSDSocket.Option(rawValue: 80)

    static func of(_ channel: any Channel) async throws -> SocketAddress {
        guard let provider = channel as? any SocketOptionProvider else { throw CaptureError.system(operation: "SO_ORIGINAL_DST (not a socket channel)", errno: ENOTSOCK) }
        let original: sockaddr_in = try await channel.eventLoop.flatSubmit {
            provider.unsafeGetSocketOption(level: .ip, name: option)
        }.get()
        return try SocketAddress(ipAddress: ipv4Text(original.sin_addr), port: Int(UInt16(bigEndian: original.sin_port)))
    }
}
#endif
