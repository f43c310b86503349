import HBONE
import Logging
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import Synchronization
import XDSClient

/// What the DNS proxy does with one question.
public enum DNSAnswer: Sendable, Hashable {
    /// A mesh Service: NOERROR, authoritative, with these VIPs (A records for
    /// IPv4 addresses, AAAA for IPv6 ones, by the question's type).
    case addresses([String])
    /// A mesh Service without addresses of the asked type: NOERROR, no answers.
    case noData
    /// A name under `<domain suffix>` that is no Service: NXDOMAIN, authoritative.
    case nameError
    /// Not a mesh name: ask the upstream resolvers.
    case forward
}

/// How many queries a ``DNSProxy`` handled, by outcome.
public struct DNSProxyCounters: Sendable, Hashable {
    /// Answered from the WorkloadStore (addresses, no data or NXDOMAIN).
    public var answeredLocally = 0
    /// Relayed to an upstream, whose answer was passed on.
    public var forwarded = 0
    /// To be forwarded, but no upstream answered: SERVFAIL.
    public var failed = 0
    /// Unreadable messages: answered FORMERR or dropped.
    public var malformed = 0

    public init() {}
}

/// Why a forwarded query got no answer from one upstream.
enum DNSForwardError: Error, Sendable, CustomStringConvertible {
    case timedOut(SocketAddress)
    case closed(SocketAddress)
    case tooManyInFlight(Int)
    case noUpstreams

    var description: String {
        switch self {
        case .timedOut(let upstream): return "no answer from \(upstream) in time"
        case .closed(let upstream): return "socket to \(upstream) closed before an answer"
        case .tooManyInFlight(let limit): return "\(limit) forwarded queries already in flight"
        case .noUpstreams: return "no upstream resolvers configured"
        }
    }
}

/// ztunnel's DNS proxy (Istio ambient, port 15053): answers a captured pod's
/// queries for mesh Services from the ``WorkloadStore`` and forwards the rest.
///
/// A name resolves like Kubernetes DNS with the pod's search path:
/// `NAME.NS.svc.<suffix>`, `NAME.NS.svc`, `NAME.NS`, and `NAME` (in the pod's
/// own namespace), case-insensitively, to the Service's VIPs. Any other name
/// under `<suffix>` is NXDOMAIN (the proxy is the cluster zone's authority, as
/// kube-dns is; so a search path never leaks cluster names). Everything else goes, as
/// sent (with a fresh query ID), over UDP to the upstreams in order, each
/// given ``upstreamTimeout``; when none answers the client gets SERVFAIL.
public final class DNSProxy: Sendable {
    /// The port ztunnel's DNS proxy listens on in each pod.
    public static let defaultPort = 15053

    public let upstreams: [SocketAddress]
    public let domainSuffix: String
    /// TTL of answers from the mesh, in seconds.
    public let ttl: UInt32
    /// How long each upstream is given to answer.
    public let upstreamTimeout: TimeAmount
    /// Forwarded queries allowed in flight at once; more get SERVFAIL.
    public let maxForwardsInFlight: Int

    private let store: WorkloadStore
    private let group: any EventLoopGroup
    private let logger: Logger
    /// `svc` and the domain suffix's labels, lowercased.
    private let serviceZone: [String]
    /// The domain suffix's labels, lowercased: the cluster's zone, answered here and never forwarded.
    private let clusterZone: [String]
    private let stats = NIOLockedValueBox(DNSProxyCounters())
    private let inFlight = Atomic<Int>(0)

    public init(store: WorkloadStore, upstreams: [SocketAddress], domainSuffix: String = "cluster.local", ttl: UInt32 = 30,
                upstreamTimeout: TimeAmount = .seconds(2), maxForwardsInFlight: Int = 1024,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) {
        self.store = store
        self.upstreams = upstreams
        self.domainSuffix = domainSuffix
        self.ttl = ttl
        self.upstreamTimeout = upstreamTimeout
        self.maxForwardsInFlight = maxForwardsInFlight
        self.group = group
        self.logger = logger
        self.clusterZone = domainSuffix.lowercased().split(separator: ".").map(String.init)
        self.serviceZone = ["svc"] + clusterZone
    }

    /// The `nameserver` lines of a resolv.conf text, port 53 (lines that are no address are left out).
    public static func nameservers(resolvConf text: String) -> [SocketAddress] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { return nil }
            return try? SocketAddress(ipAddress: String(fields[1]), port: 53)
        }
    }

    /// Queries handled so far, by outcome.
    public var counters: DNSProxyCounters { stats.withLockedValue { $0 } }

    // MARK: Decision

    /// What to do with `question` from a pod in `clientNamespace`.
    public func answer(_ question: DNSQuestion, clientNamespace: String) -> DNSAnswer {
        guard question.recordClass == DNSQuestion.internetClass || question.recordClass == 255 else { return .forward }
        let names = question.labels.map { String(decoding: $0, as: UTF8.self).lowercased() }
        // A label holding a dot could pass for two labels once joined; such a name is no Service.
        let plain = names.allSatisfy { !$0.isEmpty && !$0.contains(".") }
        let hostname: [String]
        let authoritative: Bool
        if names.count > serviceZone.count, Array(names.suffix(serviceZone.count)) == serviceZone {
            (hostname, authoritative) = (names, true)
        } else if names.count == 3, names[2] == "svc" {
            (hostname, authoritative) = (Array(names.prefix(2)) + serviceZone, false)
        } else if names.count == 2 {
            (hostname, authoritative) = (names + serviceZone, false)
        } else if names.count == 1, !clientNamespace.isEmpty {
            (hostname, authoritative) = ([names[0], clientNamespace.lowercased()] + serviceZone, false)
        } else if names.count >= clusterZone.count, Array(names.suffix(clusterZone.count)) == clusterZone {
            // The rest of the cluster's zone (what a search path makes of a full name) is no Service either.
            return .nameError
        } else {
            return .forward
        }
        guard plain, let service = store.service(hostname: hostname.joined(separator: ".")) else {
            return authoritative ? .nameError : .forward
        }
        let wanted: Set<Int> = switch question.type {
        case .a: [4]
        case .aaaa: [16]
        case .any: [4, 16]
        default: []
        }
        var seen = Set<String>()
        let addresses = service.vips.map(\.address).filter { address in
            guard let bytes = Self.addressBytes(address), wanted.contains(bytes.count) else { return false }
            return seen.insert(address).inserted
        }
        return addresses.isEmpty ? .noData : .addresses(addresses)
    }

    /// What to do with one received message.
    enum Disposition {
        case reply([UInt8])
        case forward(DNSQuery, [UInt8])
        case drop
    }

    /// Reads `message` and answers it locally, or says to forward or drop it.
    /// `maxLength` bounds a local answer (512 for UDP, RFC 1035 §4.2.1).
    func dispose(_ message: [UInt8], clientNamespace: String, maxLength: Int) -> Disposition {
        let header: DNSHeader
        do {
            header = try DNSHeader(parsing: message)
        } catch {
            count(\.malformed)
            return .drop
        }
        // Never answer a response: two proxies could bounce it between them forever.
        guard !header.isResponse else {
            count(\.malformed)
            return .drop
        }
        guard header.opcode == 0 else { return .reply(DNSResponse.encode(answeringHeader: header, code: .notImplemented)) }
        let query: DNSQuery
        do {
            query = try DNSQuery(parsing: message)
        } catch {
            count(\.malformed)
            logger.debug("malformed DNS query", metadata: ["error": "\(error)"])
            return .reply(DNSResponse.encode(answeringHeader: header, code: .formatError))
        }
        let reply: [UInt8]
        switch answer(query.question, clientNamespace: clientNamespace) {
        case .forward:
            return .forward(query, message)
        case .addresses(let addresses):
            let records = addresses.compactMap { Self.addressBytes($0) }.map { DNSAddressRecord(type: $0.count == 4 ? .a : .aaaa, address: $0, ttl: ttl) }
            reply = DNSResponse.encode(answering: query, code: .noError, answers: records, authoritative: true, maxLength: maxLength)
        case .noData:
            reply = DNSResponse.encode(answering: query, code: .noError, authoritative: true)
        case .nameError:
            reply = DNSResponse.encode(answering: query, code: .nameError, authoritative: true)
        }
        count(\.answeredLocally)
        return .reply(reply)
    }

    // MARK: Forwarding

    /// The upstreams' answer to `message` with the client's ID, or SERVFAIL; the upstream
    /// sockets are opened on `loop` (the client socket's, so the exchange does not hop threads).
    func forward(_ query: DNSQuery, message: [UInt8], on loop: any EventLoop) async -> [UInt8] {
        let inFlightBefore = inFlight.wrappingAdd(1, ordering: .relaxed).oldValue
        defer { inFlight.wrappingSubtract(1, ordering: .relaxed) }
        var failure: any Error = DNSForwardError.noUpstreams
        if inFlightBefore >= maxForwardsInFlight {
            failure = DNSForwardError.tooManyInFlight(maxForwardsInFlight)
        } else {
            for upstream in upstreams {
                do {
                    let answer = try await exchange(message, with: upstream, on: loop)
                    count(\.forwarded)
                    return DNSResponse.replacingID(of: answer, with: query.header.id)
                } catch {
                    logger.debug("DNS upstream did not answer", metadata: ["upstream": "\(upstream)", "error": "\(error)"])
                    failure = error
                }
            }
        }
        count(\.failed)
        logger.warning("DNS query could not be forwarded; answering SERVFAIL", metadata: [
            "name": "\(query.question.name)", "type": "\(query.question.type)",
            "upstreams": "\(upstreams.map(\.description))", "error": "\(failure)",
        ])
        return DNSResponse.encode(answering: query, code: .serverFailure)
    }

    /// Sends `message` with a fresh ID to `upstream` over a connected UDP socket
    /// and waits for the response with that ID.
    private func exchange(_ message: [UInt8], with upstream: SocketAddress, on loop: any EventLoop) async throws -> [UInt8] {
        let id = UInt16.random(in: .min ... .max)
        // On `loop` when it can open sockets (a NIOPosix loop), otherwise on the proxy's group.
        let channel = try await (DatagramBootstrap(validatingGroup: loop) ?? DatagramBootstrap(group: group))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .connect(to: upstream)
            .get()
        defer { channel.close(promise: nil) }
        let promise = channel.eventLoop.makePromise(of: [UInt8].self)
        let timeout = channel.eventLoop.scheduleTask(in: upstreamTimeout) { promise.fail(DNSForwardError.timedOut(upstream)) }
        defer { timeout.cancel() }
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(DNSUpstreamHandler(id: id, upstream: upstream, promise: promise))
        }.get()
        try await channel.writeAndFlush(ByteBuffer(bytes: DNSResponse.replacingID(of: message, with: id)))
        return try await promise.futureResult.get()
    }

    // MARK: Listening

    /// Answers queries on already-bound sockets (made inside a pod's network
    /// namespace): `udpSocket` bound, `tcpSocket` listening (2-byte length-prefixed
    /// DNS, RFC 1035 §4.2.2). Returns the channels (UDP first, then TCP) for the
    /// caller to close; closing the TCP one also closes its connections.
    public func serve(udpSocket: NIOBSDSocket.Handle, tcpSocket: NIOBSDSocket.Handle?, clientNamespace: String) async throws -> [any Channel] {
        let udp = try await udpBootstrap(clientNamespace: clientNamespace).withBoundSocket(udpSocket).get()
        guard let tcpSocket else { return [udp] }
        let connections = ChannelTracker()
        do {
            let tcp = try await tcpBootstrap(clientNamespace: clientNamespace, connections: connections).withBoundSocket(tcpSocket).get()
            return [udp, closingConnections(of: tcp, connections)]
        } catch {
            try? await udp.close()
            throw error
        }
    }

    /// Binds UDP and TCP at host:port (the same port for both; port 0 picks a
    /// free one) and answers queries there. Returns the channels, UDP first.
    public func bind(host: String, port: Int, clientNamespace: String) async throws -> [any Channel] {
        let attempts = port == 0 ? 8 : 1
        for attempt in 1...attempts {
            let udp = try await udpBootstrap(clientNamespace: clientNamespace).bind(host: host, port: port).get()
            guard let bound = udp.localAddress?.port else {
                try? await udp.close()
                throw ChannelError.unknownLocalAddress
            }
            let connections = ChannelTracker()
            do {
                let tcp = try await tcpBootstrap(clientNamespace: clientNamespace, connections: connections)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .bind(host: host, port: bound).get()
                return [udp, closingConnections(of: tcp, connections)]
            } catch {
                // With port 0 the UDP port may be taken for TCP; another is tried.
                try? await udp.close()
                if attempt == attempts { throw error }
            }
        }
        throw ChannelError.unknownLocalAddress
    }

    private func udpBootstrap(clientNamespace: String) -> DatagramBootstrap {
        DatagramBootstrap(group: group)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSDatagramHandler(proxy: self, clientNamespace: clientNamespace))
                }
            }
    }

    private func tcpBootstrap(clientNamespace: String, connections: ChannelTracker) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard connections.add(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: .seconds(30)))
                    try sync.addHandler(ByteToMessageHandler(DNSStreamFrameDecoder()))
                    try sync.addHandler(DNSStreamHandler(proxy: self, clientNamespace: clientNamespace))
                }
            }
    }

    private func closingConnections(of server: any Channel, _ connections: ChannelTracker) -> any Channel {
        server.closeFuture.whenComplete { _ in Task { await connections.closeAll() } }
        return server
    }

    // MARK: Helpers

    private func count(_ counter: WritableKeyPath<DNSProxyCounters, Int>) {
        stats.withLockedValue { $0[keyPath: counter] += 1 }
    }

    /// The network-order bytes of an IPv4 (4) or IPv6 (16) address text.
    static func addressBytes(_ text: String) -> [UInt8]? {
        guard let address = try? SocketAddress(ipAddress: text, port: 0) else { return nil }
        switch address {
        case .v4(let v4): return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6): return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        default: return nil
        }
    }
}

/// Answers DNS over UDP: one datagram, one query.
final class DNSDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// The largest UDP answer made locally (RFC 1035 §4.2.1).
    static let maxAnswerLength = 512

    private let proxy: DNSProxy
    private let clientNamespace: String

    init(proxy: DNSProxy, clientNamespace: String) {
        self.proxy = proxy
        self.clientNamespace = clientNamespace
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let client = envelope.remoteAddress
        switch proxy.dispose(Array(envelope.data.readableBytesView), clientNamespace: clientNamespace, maxLength: Self.maxAnswerLength) {
        case .drop:
            return
        case .reply(let reply):
            context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: reply))), promise: nil)
        case .forward(let query, let message):
            let channel = context.channel
            channel.eventLoop.runTask { [proxy] in
                let reply = await proxy.forward(query, message: message, on: channel.eventLoop)
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: reply)), promise: nil)
            }
        }
    }

    /// A failed datagram (an ICMP error for an earlier answer) ends nothing: keep serving.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// Splits a DNS TCP stream into messages, each preceded by its 2-byte length (RFC 1035 §4.2.2).
struct DNSStreamFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    /// `message` preceded by its length.
    static func frame(_ message: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(message.count + 2)
        buffer.writeInteger(UInt16(clamping: message.count))
        buffer.writeBytes(message.prefix(Int(UInt16.max)))
        return buffer
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              let frame = buffer.getSlice(at: buffer.readerIndex + 2, length: Int(length)) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2 + Int(length))
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Answers DNS over TCP: each message in, one length-prefixed message out.
final class DNSStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let proxy: DNSProxy
    private let clientNamespace: String

    init(proxy: DNSProxy, clientNamespace: String) {
        self.proxy = proxy
        self.clientNamespace = clientNamespace
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch proxy.dispose(Array(frame.readableBytesView), clientNamespace: clientNamespace, maxLength: Int(UInt16.max)) {
        case .drop:
            context.close(promise: nil)
        case .reply(let reply):
            context.writeAndFlush(wrapOutboundOut(DNSStreamFrameDecoder.frame(reply)), promise: nil)
        case .forward(let query, let message):
            let channel = context.channel
            channel.eventLoop.runTask { [proxy] in
                let reply = await proxy.forward(query, message: message, on: channel.eventLoop)
                channel.writeAndFlush(DNSStreamFrameDecoder.frame(reply), promise: nil)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Waits on a connected UDP socket for the upstream's response to one forwarded query.
final class DNSUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let id: UInt16
    private let upstream: SocketAddress
    private let promise: EventLoopPromise<[UInt8]>

    init(id: UInt16, upstream: SocketAddress, promise: EventLoopPromise<[UInt8]>) {
        self.id = id
        self.upstream = upstream
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = Array(unwrapInboundIn(data).data.readableBytesView)
        // Anything but a response with our ID (a stray or spoofed datagram) is ignored.
        guard let header = try? DNSHeader(parsing: message), header.isResponse, header.id == id else { return }
        promise.succeed(message)
    }

    /// ECONNREFUSED (nothing listens at the upstream) fails this upstream at once.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DNSForwardError.closed(upstream))
        context.fireChannelInactive()
    }
}
