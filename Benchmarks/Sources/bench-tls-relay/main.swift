// bench-tls-relay: a TLS relay pair built from the same SwiftNIO + NIOSSL + MeshTLS stack
// as ztunnel, without HTTP/2. scripts/bench hbone runs it beside stunnel and ztunnel to
// split ztunnel's added latency into "the NIO/TLS stack" and "HTTP/2 framing on top".
//
//   bench-tls-relay client LISTEN TARGET SVID_DIR   plaintext in, SPIFFE mTLS out
//   bench-tls-relay server LISTEN TARGET SVID_DIR   SPIFFE mTLS in, plaintext out
//
// LISTEN and TARGET are IPv4 ip:port; SVID_DIR holds svid.pem, svid.key and bundle.pem
// (from `meshctl svid issue`). One event loop; each accepted connection is relayed to
// a new connection to TARGET on the same loop, flushing at the end of every read burst.
import Foundation
import MeshIdentity
import NIOCore
import NIOPosix

/// Forwards what its channel reads to the partner channel; bytes read before the
/// partner is connected are held and sent once it is.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var partner: (any Channel)?
    private var held: [ByteBuffer] = []
    private var pendingFlush = false

    func connect(to partner: any Channel) {
        self.partner = partner
        for bytes in held { partner.write(bytes, promise: nil) }
        if !held.isEmpty { partner.flush() }
        held = []
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let partner else {
            held.append(bytes)
            return
        }
        partner.write(bytes, promise: nil)
        pendingFlush = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if pendingFlush {
            pendingFlush = false
            partner?.flush()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension RelayHandler: Sendable {}

func fail(_ message: String) -> Never {
    print("bench-tls-relay: \(message)")
    exit(2)
}

func address(_ text: String) -> SocketAddress {
    let parts = text.split(separator: ":")
    guard parts.count == 2, let port = Int(parts[1]), let address = try? SocketAddress(ipAddress: String(parts[0]), port: port) else {
        fail("not an ip:port: \(text)")
    }
    return address
}

let arguments = CommandLine.arguments
guard arguments.count == 5, ["client", "server"].contains(arguments[1]) else {
    fail("usage: bench-tls-relay client|server LISTEN TARGET SVID_DIR")
}
let tlsOnAccepted = arguments[1] == "server"
let (listen, target, directory) = (address(arguments[2]), address(arguments[3]), arguments[4])
let tls: MeshTLS
do {
    let svid = try X509SVID(chainFile: directory + "/svid.pem", privateKeyFile: directory + "/svid.key")
    let bundle = try TrustBundle(trustDomain: svid.id.trustDomain, pem: String(contentsOfFile: directory + "/bundle.pem", encoding: .utf8))
    tls = MeshTLS(svids: SVIDSource(svid: svid), bundles: TrustBundleStore(bundle))
} catch {
    fail("cannot load the SVID from \(directory): \(error)")
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let authorizer = SPIFFEAuthorizer.anyVerified
let server = try await ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { accepted in
        let fromAccepted = RelayHandler(), fromTarget = RelayHandler()
        do {
            let sync = accepted.pipeline.syncOperations
            if tlsOnAccepted { try sync.addHandlers(tls.makeServerHandlers(authorizer: authorizer)) }
            try sync.addHandler(fromAccepted)
        } catch {
            return accepted.eventLoop.makeFailedFuture(error)
        }
        let loopBound = NIOLoopBound((fromAccepted, fromTarget), eventLoop: accepted.eventLoop)
        return ClientBootstrap(group: accepted.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { outgoing in
                outgoing.eventLoop.makeCompletedFuture {
                    let sync = outgoing.pipeline.syncOperations
                    if !tlsOnAccepted { try sync.addHandlers(tls.makeClientHandlers(authorizer: authorizer)) }
                    try sync.addHandler(loopBound.value.1)
                }
            }
            .connect(to: target)
            .map { outgoing in
                let (fromAccepted, fromTarget) = loopBound.value
                fromAccepted.connect(to: outgoing)
                fromTarget.connect(to: accepted)
            }
    }
    .bind(to: listen)
    .get()
print("bench-tls-relay \(arguments[1]) listening on \(server.localAddress.map { "\($0)" } ?? arguments[2])")
try await server.closeFuture.get()
