#if os(Linux)
import Glibc
import HBONE
import Logging
import MeshIdentity
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import XDSClient

/// Captures ambient pods the way Istio's ztunnel does in its in-pod mode: for
/// each pod the node agent enrolls (``ZDSWorkloadHandler``), it opens the pod's
/// listeners inside the pod's network namespace (15001 outbound, 15006 inbound
/// plaintext, 15008 inbound HBONE; 15001 and 15006 once per event loop, so that a
/// connection is served by the loop that accepted it) and makes every connection on the pod's
/// behalf from inside that namespace with SO_MARK 0x539 (``WorkloadConnector``),
/// so that the pod's capture rules (``InPodRules``) let it pass and peers see
/// the pod's own address. With a ``DNSProxy`` it also answers the pod's DNS
/// on 15053 (UDP and TCP), with the pod's namespace as search domain.
///
/// Removing a pod closes its listeners and ends its connections; a pod that
/// cannot be captured (no address, a port taken by the application) is
/// refused with the reason and leaves nothing behind.
public final class InPodCapture: ZDSWorkloadHandler, WorkloadConnector {
    /// Ports opened in each pod.
    public struct Ports: Sendable, Hashable {
        public var outbound = 15001
        public var inboundPlaintext = 15006
        public var inboundHBONE = 15008
        public var dns = 15053
        public init() {}

        /// The TCP ports ztunnel holds in every captured pod: no application listens there,
        /// so a connection to one of them from the mesh can only be an attempt to reach ztunnel itself.
        public var tcp: Set<Int> { [outbound, inboundPlaintext, inboundHBONE] }
    }

    /// A captured pod.
    final class Pod: Sendable {
        let workload: ZDSWorkload
        let namespace: NetworkNamespace
        let addresses: [String]
        let listeners: [any Channel]
        let hbone: HBONEListener
        let connections: ChannelTracker

        init(workload: ZDSWorkload, namespace: NetworkNamespace, addresses: [String], listeners: [any Channel], hbone: HBONEListener, connections: ChannelTracker) {
            self.workload = workload
            self.namespace = namespace
            self.addresses = addresses
            self.listeners = listeners
            self.hbone = hbone
            self.connections = connections
        }

        func close() async {
            for listener in listeners { try? await listener.close() }
            await hbone.close()
            await connections.closeAll()
            namespace.close()
        }
    }

    /// The sockets made in a pod's namespace for its capture, before NIO has them.
    private struct PodSockets: Sendable {
        var outbound: [CInt]
        var inboundPlaintext: [CInt]
        var inboundHBONE: CInt
        var dns: (tcp: CInt, udp: CInt)?

        var all: Set<CInt> { Set(outbound + inboundPlaintext + [inboundHBONE] + (dns.map { [$0.tcp, $0.udp] } ?? [])) }
    }

    private struct State {
        var pods: [String: Pod] = [:]
        var byAddress: [String: Pod] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let operations = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let ports: Ports
    private let workers: NamespaceWorkers
    private let group: any EventLoopGroup
    private let connectTimeout: TimeAmount
    private let logger: Logger
    private let handlers = NIOLockedValueBox<Handlers?>(nil)

    /// What captured connections are handed to (set once with ``attach(server:router:store:node:observer:dns:)``).
    struct Handlers: Sendable {
        let server: HBONEServer
        let router: OutboundRouter
        let store: WorkloadStore
        let node: String
        let observer: (any CaptureObserver)?
        let dns: DNSProxy?
    }

    public init(ports: Ports = Ports(), workers: NamespaceWorkers, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                connectTimeout: TimeAmount = .seconds(10), logger: Logger) {
        self.ports = ports
        self.workers = workers
        self.group = group
        self.connectTimeout = connectTimeout
        self.logger = logger
        // Opened now rather than at the first pod's (a failure here shows again, thrown, at that pod).
        _ = try? NetworkNamespace.home()
    }

    /// Wires the proxy's parts in: `server` accepts on each pod's 15008, `router` carries
    /// what the pod sends, `store` decides inbound plaintext, `dns` answers the pod's DNS. Call before pods are added.
    public func attach(server: HBONEServer, router: OutboundRouter, store: WorkloadStore, node: String, observer: (any CaptureObserver)? = nil,
                       dns: DNSProxy? = nil) {
        handlers.withLockedValue { $0 = Handlers(server: server, router: router, store: store, node: node, observer: observer, dns: dns) }
    }

    /// The captured pods' uids.
    public var capturedUIDs: Set<String> { state.withLockedValue { Set($0.pods.keys) } }

    /// Captured pods as `namespace/name` → their addresses (for the admin page).
    public var capturedPods: [String: [String]] {
        state.withLockedValue { Dictionary($0.pods.values.map { ($0.workload.key, $0.addresses) }, uniquingKeysWith: { first, _ in first }) }
    }

    // MARK: ZDSWorkloadHandler

    public func addWorkload(_ workload: ZDSWorkload, namespace: NetworkNamespace) async throws {
        guard let handlers = handlers.withLockedValue({ $0 }) else { throw CaptureError.shutDown }
        // A second add for a uid replaces the first (its namespace may be a new one).
        await removeWorkload(uid: workload.uid)
        let ports = self.ports
        let addresses = try await workers.run { try namespace.ipv4Addresses() }
        guard !addresses.isEmpty else { throw CaptureError.noPodAddress(pod: workload.key) }
        let withDNS = handlers.dns != nil
        // One outbound and one plaintext listener per event loop, all bound with SO_REUSEPORT: the kernel spreads
        // the pod's connections over them, and each connection stays on the loop that accepted it (no thread hop).
        let loops = Array(group.makeIterator())
        let sockets = try await workers.run { () throws -> PodSockets in
            var made: [CInt] = []
            /// A socket of the pod's, kept in `made` so that a later failure closes it.
            func bound(_ make: () throws -> CInt) throws -> CInt {
                made.append(try make())
                return made[made.count - 1]
            }
            do {
                var outbound: [CInt] = [], inboundPlaintext: [CInt] = []
                for _ in loops {
                    outbound.append(try bound { try namespace.tcpListener(port: ports.outbound) })
                    inboundPlaintext.append(try bound { try namespace.tcpListener(port: ports.inboundPlaintext) })
                }
                let inboundHBONE = try bound { try namespace.tcpListener(port: ports.inboundHBONE) }
                // On loopback, as ztunnel's: the redirect of port 53 lands there, and answers leave from there.
                let dns = withDNS ? (tcp: try bound { try namespace.tcpListener(port: ports.dns, loopback: true) },
                                     udp: try bound { try namespace.udpSocket(port: ports.dns, loopback: true) }) : nil
                return PodSockets(outbound: outbound, inboundPlaintext: inboundPlaintext, inboundHBONE: inboundHBONE, dns: dns)
            } catch {
                for socket in made { closeDescriptor(socket) }
                throw error
            }
        }
        let connections = ChannelTracker()
        var listeners: [any Channel] = []
        var hbone: HBONEListener?
        // Sockets still ours to close: one leaves the set when it is handed to NIO, whether or not that succeeds.
        var notHandedOver = sockets.all
        do {
            for (index, loop) in loops.enumerated() {
                notHandedOver.remove(sockets.outbound[index])
                listeners.append(try await listen(sockets.outbound[index], on: loop, connections: connections) { channel in
                    await self.outbound(channel, workload: workload, handlers: handlers)
                })
                notHandedOver.remove(sockets.inboundPlaintext[index])
                listeners.append(try await listen(sockets.inboundPlaintext[index], on: loop, connections: connections) { channel in
                    await self.inboundPlaintext(channel, workload: workload, handlers: handlers)
                })
            }
            notHandedOver.remove(sockets.inboundHBONE)
            hbone = try await handlers.server.listen(boundSocket: sockets.inboundHBONE)
            if let dns = handlers.dns, let dnsSockets = sockets.dns {
                notHandedOver.subtract([dnsSockets.tcp, dnsSockets.udp])
                listeners += try await dns.serve(udpSocket: dnsSockets.udp, tcpSocket: dnsSockets.tcp, clientNamespace: workload.namespace)
            }
        } catch {
            for listener in listeners { try? await listener.close() }
            await hbone?.close()
            for socket in notHandedOver { closeDescriptor(socket) }
            throw error
        }
        guard let hbone else { throw CaptureError.shutDown }
        let pod = Pod(workload: workload, namespace: namespace, addresses: addresses, listeners: listeners, hbone: hbone, connections: connections)
        state.withLockedValue { state in
            state.pods[workload.uid] = pod
            for address in addresses { state.byAddress[address] = pod }
        }
        logger.info("pod captured", metadata: ["pod": "\(workload.key)", "uid": "\(workload.uid)", "addresses": "\(addresses.joined(separator: ","))"])
    }

    public func removeWorkload(uid: String) async {
        let pod = state.withLockedValue { state -> Pod? in
            guard let pod = state.pods.removeValue(forKey: uid) else { return nil }
            for address in pod.addresses where state.byAddress[address] === pod { state.byAddress[address] = nil }
            return pod
        }
        guard let pod else { return }
        await pod.close()
        logger.info("pod released", metadata: ["pod": "\(pod.workload.key)", "uid": "\(uid)"])
    }

    public func hasWorkload(uid: String) async -> Bool { state.withLockedValue { $0.pods[uid] != nil } }

    public func snapshotComplete(keeping uids: Set<String>) async {
        for uid in capturedUIDs.subtracting(uids) { await removeWorkload(uid: uid) }
    }

    /// Releases every pod.
    public func close() async {
        for uid in capturedUIDs { await removeWorkload(uid: uid) }
        handlers.withLockedValue { $0 = nil }
    }

    // MARK: WorkloadConnector

    public func connectedSocket(to destination: SocketAddress, forWorkload workload: String, timeout: TimeAmount) async throws -> NIOBSDSocket.Handle? {
        guard let pod = state.withLockedValue({ $0.byAddress[workload] }) else { return nil }
        let namespace = pod.namespace
        switch try namespace.startConnect(to: destination, mark: InPodRules.ztunnelMark) {
        case .connected(let socket):
            return socket
        case .inProgress(let socket):
            do {
                return try await workers.run { try namespace.finishConnect(socket, to: destination, timeout: timeout) }
            } catch let error as CaptureError {
                throw error  // finishConnect closed the socket
            } catch {
                closeDescriptor(socket)  // the workers have stopped: finishConnect never ran
                throw error
            }
        }
    }

    // MARK: Listeners

    /// Accepts on `socket` with `loop`, which also serves every connection accepted.
    private func listen(_ socket: CInt, on loop: any EventLoop, connections: ChannelTracker,
                        _ accepted: @escaping @Sendable (any Channel) async -> Void) async throws -> any Channel {
        try await ServerBootstrap(group: loop, childGroup: loop)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Nothing is read until the connection's other side is up (the splice switches reading on).
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                guard connections.add(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    // Keeps bytes that arrive before the connection's other side is up.
                    try channel.pipeline.syncOperations.addHandler(HBONEHoldingHandler())
                    // Handled once active: the initializer runs before registration, and a splice
                    // joined to a channel not yet active would take it for closed.
                    try channel.pipeline.syncOperations.addHandler(ActivationHandler { channel in
                        channel.eventLoop.runTask { await accepted(channel) }
                    })
                }
            }
            .withBoundSocket(socket)
            .get()
    }

    /// A connection the pod opened (redirected to 15001): to its original destination through the mesh.
    private func outbound(_ channel: any Channel, workload: ZDSWorkload, handlers: Handlers) async {
        let started = ContinuousClock.now
        guard let destination = try? await OriginalDestination.of(channel), let host = destination.ipAddress, let port = destination.port else {
            logger.warning("captured connection without an original destination; closing", metadata: ["pod": "\(workload.key)"])
            channel.close(promise: nil)
            return
        }
        let source = channel.remoteAddress
        let observer = handlers.observer
        do {
            let route = try await handlers.router.connect(host: host, port: port, source: source, socket: channel, passthroughUnknown: true) { route, sent, received in
                observer?.outboundClosed(CapturedConnection(pod: workload, source: source, destination: destination, route: route,
                                                            duration: ContinuousClock.now - started), sent: sent, received: received)
            }
            observer?.outboundOpened(CapturedConnection(pod: workload, source: source, destination: destination, route: route, duration: .zero))
        } catch {
            logger.info("captured outbound connection refused", metadata: [
                "pod": "\(workload.key)", "destination": "\(host):\(port)", "error": "\(error)", "flag": "\(error.responseFlag)",
            ])
            observer?.outboundFailed(pod: workload, source: source, destination: destination, error: error)
            channel.close(promise: nil)
        }
    }

    /// A plaintext connection to the pod (redirected to 15006): the pod's policies decide
    /// without a peer identity (STRICT PeerAuthentication denies it), then it is passed on.
    private func inboundPlaintext(_ channel: any Channel, workload: ZDSWorkload, handlers: Handlers) async {
        guard let destination = try? await OriginalDestination.of(channel), let host = destination.ipAddress, let port = destination.port,
              let target = handlers.store.workload(address: host), target.node == handlers.node, let port16 = UInt16(exactly: port) else {
            logger.info("plaintext inbound connection to no local workload; closing", metadata: ["pod": "\(workload.key)"])
            channel.close(promise: nil)
            return
        }
        let source = channel.remoteAddress
        let decision = handlers.store.authorize(L4Connection(source: nil, destination: target, destinationPort: port16,
                                                             sourceAddress: source?.ipAddress, destinationAddress: host))
        if case .deny(let reason) = decision {
            logger.info("plaintext inbound connection denied", metadata: [
                "pod": "\(workload.key)", "source": "\(source.map { "\($0)" } ?? "-")", "port": "\(port)", "reason": "\(reason)",
            ])
            handlers.observer?.inboundPlaintextDenied(pod: workload, source: source, destination: destination, reason: reason)
            channel.close(promise: nil)
            return
        }
        let started = ContinuousClock.now
        let observer = handlers.observer
        do {
            try await TCPPassthrough.splice(channel, to: destination, connectTimeout: connectTimeout, connector: self, workload: host) { sent, received in
                observer?.inboundPlaintextClosed(pod: workload, source: source, destination: destination, duration: ContinuousClock.now - started,
                                                 sent: sent, received: received)
            }
        } catch {
            logger.info("plaintext inbound connect to the pod failed", metadata: ["pod": "\(workload.key)", "error": "\(error)"])
            channel.close(promise: nil)
        }
    }
}

/// Calls `body` once its channel is active (registered), then leaves the pipeline.
final class ActivationHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let body: @Sendable (any Channel) -> Void

    init(_ body: @escaping @Sendable (any Channel) -> Void) { self.body = body }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        body(context.channel)
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }
}

/// One captured outbound connection, for access logs and metrics.
public struct CapturedConnection: Sendable {
    public var pod: ZDSWorkload
    public var source: SocketAddress?
    public var destination: SocketAddress
    public var route: OutboundRoute
    public var duration: Duration
}

/// Told about captured connections (access logs, metrics).
public protocol CaptureObserver: Sendable {
    func outboundOpened(_ connection: CapturedConnection)
    func outboundClosed(_ connection: CapturedConnection, sent: UInt64, received: UInt64)
    func outboundFailed(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, error: OutboundError)
    func inboundPlaintextDenied(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, reason: String)
    func inboundPlaintextClosed(pod: ZDSWorkload, source: SocketAddress?, destination: SocketAddress, duration: Duration, sent: UInt64, received: UInt64)
}

private func closeDescriptor(_ socket: CInt) {
    _ = Glibc.close(socket)
}
#endif
