import FuzzSupport
@testable import HBONE
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2

// The bytes an HBONE server reads after TLS: the client preface, then HTTP/2
// frames, through the connection pipeline HBONEServer builds (HBONE's own
// frame reader HBONEDataPath, NIOHTTP2Handler with HBONE's settings, the
// connection management handler) on an EmbeddedChannel. TLS is left out: it
// only decrypts.
//
// HBONEDataPath and the stream handlers are internal, so this harness uses
// `@testable import HBONE`. The real inbound stream handler asks the TLS
// handler for the peer's identity and connects upstream asynchronously, which
// an EmbeddedChannel cannot host; `ConnectStream` below stands in for it
// synchronously: it reads the CONNECT as HBONE does, answers 200 and puts the
// stream on the fast data path with HBONEStreamDataCodec (as after a
// successful upstream connect), and an echo plays the upstream, so DATA,
// WINDOW_UPDATE and SETTINGS from the input drive HBONEDataPath in both
// directions.
//
// Input: byte 0 is the read size the bytes are split into (0: one read),
// byte 1 flags (bit 0: echo, bit 1: the upstream stops and resumes reading
// between reads, so stream windows are withheld), then the frames. The preface
// is prepended.

private let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
private let settings = HBONEHTTP2Settings()
private let logger = Fuzz.quietLogger()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var reader = FuzzReader(Fuzz.bytes(data, size))
    let chunk = Int(reader.byte())
    let flags = reader.byte()
    let bytes = preface + reader.rest()

    let channel = EmbeddedChannel()
    let upstreams = Upstreams(echo: flags & 1 != 0, pausing: flags & 2 != 0)
    do {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(WriteCoalescingHandler())
        try sync.addHandler(HBONEDataPath(role: .server, settings: settings))
        let management = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(maxIdleTime: nil, maxAge: nil, maxGraceTime: .seconds(5), keepalive: .init(pingInterval: .seconds(10), ackTimeout: .seconds(20)))
        )
        let http2 = NIOHTTP2Handler(
            mode: .server,
            eventLoop: channel.eventLoop,
            connectionConfiguration: settings.connectionConfiguration,
            streamConfiguration: settings.streamConfiguration,
            streamDelegate: management.http2StreamDelegate
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(ConnectStream(upstreams: upstreams))
            }
        }
        try sync.addHandler(http2)
        try sync.addHandler(management)
        try sync.addHandler(ConnectionErrorLogger(logger: logger))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 15008)).wait()
    } catch {
        fatalError("pipeline set-up failed: \(error)")
    }

    var index = 0
    let step = chunk == 0 ? bytes.count : chunk
    while index < bytes.count, channel.isActive {
        let end = min(bytes.count, index + step)
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes[index..<end]))
        } catch {
            break  // A connection error: the pipeline closes the connection, as on a socket.
        }
        channel.pipeline.fireChannelReadComplete()
        upstreams.betweenReads()
        channel.embeddedEventLoop.run()
        drain(channel)
        index = end
    }
    upstreams.resumeAll()
    channel.embeddedEventLoop.run()
    drain(channel)
    _ = try? channel.finish(acceptAlreadyClosed: true)
    return 0
}

/// Drops what the server wrote to the network so far.
private func drain(_ channel: EmbeddedChannel) {
    while (try? channel.readOutbound(as: IOData.self)) != nil {}
}

/// The streams' upstream ends, for pausing and resuming them between reads.
private final class Upstreams {
    let echo: Bool
    let pausing: Bool
    var streams: [Echo] = []
    private var paused = false

    init(echo: Bool, pausing: Bool) {
        self.echo = echo
        self.pausing = pausing
    }

    func betweenReads() {
        guard pausing else { return }
        paused.toggle()
        for stream in streams { stream.setConsuming(!paused) }
    }

    func resumeAll() {
        for stream in streams { stream.setConsuming(true) }
        streams.removeAll()
    }
}

/// Reads a CONNECT as HBONEInboundStreamHandler does and, when it is one, answers 200 and splices the stream to an echo.
private final class ConnectStream: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum State { case waitingForHeaders, spliced, finished }
    private var state = State.waitingForHeaders
    private let upstreams: Upstreams

    init(upstreams: Upstreams) { self.upstreams = upstreams }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .waitingForHeaders:
            guard case .headers(let headers) = unwrapInboundIn(data) else { return reject(context: context, status: 400) }
            let fields = headers.headers
            _ = fields.first(name: "forwarded").flatMap(HBONEForwarding.parseForwardedFor)
            guard fields.first(name: ":method") == "CONNECT", (try? HBONEAuthority(parsing: fields.first(name: ":authority") ?? "")) != nil else {
                return reject(context: context, status: 400)
            }
            state = .spliced
            var response = HPACKHeaders()
            response.add(name: ":status", value: "200")
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: response))), promise: nil)
            do {
                try context.pipeline.syncOperations.addHandler(HBONEStreamDataCodec(fastPath: .whenAdded), position: .after(self))
                let echo = Echo(echoing: upstreams.echo)
                try context.pipeline.syncOperations.addHandler(echo)
                upstreams.streams.append(echo)
            } catch {
                context.close(promise: nil)
            }
        case .spliced:
            context.fireChannelRead(data)
        case .finished:
            break
        }
    }

    private func reject(context: ChannelHandlerContext, status: Int) {
        state = .finished
        var headers = HPACKHeaders()
        headers.add(name: ":status", value: "\(status)")
        context.write(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.rstStream(.noError)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if state == .spliced {
            context.fireErrorCaught(error)
        } else {
            state = .finished
            context.close(promise: nil)
        }
    }
}

/// The upstream: writes back what it reads (or drops it), half-closes when the stream's input ends.
private final class Echo: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let echoing: Bool
    private var context: ChannelHandlerContext?

    init(echoing: Bool) { self.echoing = echoing }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func setConsuming(_ consuming: Bool) {
        context?.triggerUserOutboundEvent(HBONEStreamEvent.consuming(consuming), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if echoing { context.write(data, promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(mode: .output, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
