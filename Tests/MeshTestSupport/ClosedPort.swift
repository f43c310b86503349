import NIOCore
import NIOPosix

/// A local port nothing listens on (bound, then closed): a server replica that is down.
public func closedLocalPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
    guard let port = channel.localAddress?.port else { throw ChannelError.unknownLocalAddress }
    try await channel.close()
    return port
}
