import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Binds outgoing HBONE connections to the pool key's source IP (port 0), as
/// ztunnel binds the source workload's address, so the peer sees the connection
/// coming from that workload.
enum SourceBinding {
    /// The local address for a source IP, with port 0 (any free port).
    static func address(for ip: String) throws(HBONEError) -> SocketAddress {
        do {
            return try SocketAddress(ipAddress: ip, port: 0)
        } catch {
            throw .sourceUnavailable(ip)
        }
    }

    /// Connects `bootstrap` to `destination`: inside the namespace of `workload` when `connector`
    /// holds it, otherwise from this namespace, bound to `local` when given.
    /// A source that is not an address of this host (or of the wrong family) is ``HBONEError/sourceUnavailable(_:)``.
    static func connect(_ bootstrap: ClientBootstrap, to destination: SocketAddress, from local: SocketAddress?,
                        connector: (any WorkloadConnector)? = nil, workload: String? = nil, timeout: TimeAmount = .seconds(10)) async throws -> any Channel {
        if let connector, let workload, let socket = try await connector.connectedSocket(to: destination, forWorkload: workload, timeout: timeout) {
            return try await bootstrap.withConnectedSocket(socket).get()
        }
        guard let local else { return try await bootstrap.connect(to: destination).get() }
        let ip = local.ipAddress ?? "\(local)"
        guard local.protocol == destination.protocol else { throw HBONEError.sourceUnavailable(ip) }
        do {
            return try await bootstrap.bind(to: local).connect(to: destination).get()
        } catch let error as IOError where [EADDRNOTAVAIL, EAFNOSUPPORT, EINVAL].contains(error.errnoCode) {
            throw HBONEError.sourceUnavailable(ip)
        }
    }
}
