import Logging
import MeshIdentity
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// Handles one inbound HBONE stream: validates the CONNECT, asks the
/// ``HBONEInboundHandler``, connects upstream, answers, then hands the stream to a splice.
final class HBONEInboundStreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum State {
        case waitingForHeaders
        case connecting(buffered: [HTTP2Frame.FramePayload])
        case spliced
        case finished
    }

    private let handler: any HBONEInboundHandler
    private let configuration: HBONEServerConfiguration
    private let metrics: any HBONEMetricsObserver
    private let logger: Logger
    private var state = State.waitingForHeaders

    init(handler: any HBONEInboundHandler, configuration: HBONEServerConfiguration, metrics: any HBONEMetricsObserver, logger: Logger) {
        self.handler = handler
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        switch state {
        case .waitingForHeaders:
            guard case .headers(let headers) = payload else {
                reject(context: context, status: 400, flag: .badRequest, info: nil, reason: "stream did not start with HEADERS")
                return
            }
            start(context: context, headers: headers.headers)
        case .connecting(var buffered):
            buffered.append(payload)
            state = .connecting(buffered: buffered)
        case .spliced:
            context.fireChannelRead(data)
        case .finished:
            break
        }
    }

    private func start(context: ChannelHandlerContext, headers: HPACKHeaders) {
        let method = headers.first(name: ":method")
        let rawAuthority = headers.first(name: ":authority") ?? ""
        let forwarding = HBONEForwarding(
            source: headers.first(name: "forwarded").flatMap(HBONEForwarding.parseForwardedFor),
            baggage: headers.first(name: "baggage"),
            traceparent: headers.first(name: "traceparent")
        )
        guard method == "CONNECT" else {
            reject(context: context, status: 400, flag: .badRequest, info: nil, reason: "method \(method ?? "none") is not CONNECT")
            return
        }
        let authority: HBONEAuthority
        do {
            authority = try HBONEAuthority(parsing: rawAuthority)
        } catch {
            reject(context: context, status: 400, flag: .badRequest, info: nil, reason: "\(error)")
            return
        }
        state = .connecting(buffered: [])
        guard let connection = context.channel.parent else {
            reject(context: context, status: 503, flag: .noRoute, info: nil, reason: "stream has no connection")
            return
        }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let handler = self.handler
        let peerAddress = connection.remoteAddress
        let localAddress = connection.localAddress
        loop.makeFutureWithLoopTask { () async throws -> Decision in
            let peer = try await connection.verifiedPeer()
            let request = HBONEInboundRequest(peerID: peer.peerID, authority: authority, forwarding: forwarding,
                                               peerAddress: peerAddress, localAddress: localAddress)
            guard let upstream = await handler.resolve(request) else { return .unknown(request) }
            switch await handler.authorize(request, upstream: upstream) {
            case .allow: return .allowed(request, upstream)
            case .deny(let reason): return .denied(request, reason)
            }
        }.whenComplete { result in
            let (this, context) = bound.value
            this.decided(result, context: context)
        }
    }

    private enum Decision: Sendable {
        case unknown(HBONEInboundRequest)
        case denied(HBONEInboundRequest, String)
        case allowed(HBONEInboundRequest, HBONEUpstream)
    }

    private func info(_ request: HBONEInboundRequest) -> HBONETunnelInfo {
        HBONETunnelInfo(direction: .inbound, peerID: request.peerID, authority: request.authority.description, source: request.forwarding.source)
    }

    private func decided(_ result: Result<Decision, any Error>, context: ChannelHandlerContext) {
        guard case .connecting = state else { return }
        switch result {
        case .failure(let error):
            reject(context: context, status: 503, flag: .noRoute, info: nil, reason: "peer identity unavailable: \(error)")
        case .success(.unknown(let request)):
            reject(context: context, status: 503, flag: .noRoute, info: info(request), reason: "unknown destination \(request.authority)")
        case .success(.denied(let request, let reason)):
            reject(context: context, status: 401, flag: .denied, info: info(request), reason: reason)
        case .success(.allowed(let request, let upstream)):
            connect(context: context, request: request, upstream: upstream)
        }
    }

    private func connect(context: ChannelHandlerContext, request: HBONEInboundRequest, upstream: HBONEUpstream) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let configuration = self.configuration
        let loop = context.eventLoop
        // Inside the destination workload's namespace when the connector holds it.
        loop.makeFutureWithLoopTask {
            let bootstrap = ClientBootstrap(group: loop)
                .connectTimeout(configuration.upstreamConnectTimeout)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelOption(.autoRead, value: false)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                // NIO reads a half-closed socket even with autoRead off: what the upstream sends
                // (and its end of input) before the splice is in place is held, not lost.
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HBONEHoldingHandler()) }
                }
            return try await SourceBinding.connect(bootstrap, to: upstream.address, from: nil, connector: configuration.connector,
                                                   workload: upstream.address.ipAddress, timeout: configuration.upstreamConnectTimeout)
        }
            .whenComplete { result in
                let (this, context) = bound.value
                this.upstreamConnected(result, context: context, request: request, upstream: upstream)
            }
    }

    private func upstreamConnected(_ result: Result<any Channel, any Error>, context: ChannelHandlerContext, request: HBONEInboundRequest, upstream: HBONEUpstream) {
        guard case .connecting(let buffered) = state else {
            if case .success(let socket) = result { socket.close(promise: nil) }
            return
        }
        let socket: any Channel
        switch result {
        case .failure(let error):
            reject(context: context, status: 503, flag: .upstreamConnectionFailure, info: info(request), reason: "upstream \(upstream.address) connect failed: \(error)")
            return
        case .success(let channel):
            socket = channel
        }
        state = .spliced
        let info = self.info(request)
        let metrics = self.metrics
        let logger = self.logger
        var headers = HPACKHeaders()
        headers.add(name: ":status", value: "200")
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        do {
            try context.pipeline.syncOperations.addHandler(HBONEStreamDataCodec(fastPath: .whenAdded), position: .after(self))
        } catch {
            socket.close(promise: nil)
            context.close(promise: nil)
            return
        }
        metrics.tunnelOpened(info)
        logger.debug("inbound tunnel open", metadata: ["peer": "\(request.peerID)", "authority": "\(request.authority)", "upstream": "\(upstream.address)"])
        let stream = context.channel
        // The upstream socket is on this loop too, so both halves are installed before this returns.
        SpliceHandler.join(stream: stream, socket: socket) { fromStream, fromSocket in
            metrics.tunnelClosed(info, summary: HBONETunnelSummary(status: 200, responseFlag: .none, bytesToDestination: fromStream, bytesFromDestination: fromSocket))
            logger.debug("inbound tunnel closed", metadata: ["peer": "\(request.peerID)", "authority": "\(request.authority)", "in": "\(fromStream)", "out": "\(fromSocket)"])
        }.whenFailure { _ in
            socket.close(promise: nil)
            stream.close(promise: nil)
        }
        // DATA that arrived while the upstream was connecting now reaches the splice.
        for payload in buffered { context.fireChannelRead(NIOAny(payload)) }
        if !buffered.isEmpty { context.fireChannelReadComplete() }
    }


    private func reject(context: ChannelHandlerContext, status: Int, flag: HBONEResponseFlag, info: HBONETunnelInfo?, reason: String) {
        state = .finished
        logger.info("inbound CONNECT refused", metadata: ["status": "\(status)", "reason": "\(reason)", "authority": "\(info?.authority ?? "-")", "peer": "\(info?.peerID?.description ?? "-")"])
        if let info { metrics.tunnelClosed(info, summary: HBONETunnelSummary(status: status, responseFlag: flag)) }
        var headers = HPACKHeaders()
        headers.add(name: ":status", value: "\(status)")
        context.write(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
        // RFC 9113 §8.1: after a complete response the server may ask the client to stop sending with NO_ERROR.
        context.writeAndFlush(wrapOutboundOut(.rstStream(.noError)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .spliced = state {
            context.fireErrorCaught(error)
        } else {
            state = .finished
            context.close(promise: nil)
        }
    }
}
