import NIOCore
import NIOHTTP2

/// Signals between an ``HBONEStreamDataCodec`` on the fast data path and the handlers around it.
enum HBONEStreamEvent: Sendable {
    /// (inbound) The stream takes more bytes (true) or wants no more for now (false): its
    /// flow-control window or the connection is full.
    case writable(Bool)
    /// (outbound) The stream's reader takes bytes (true) or has stopped (false, its partner
    /// socket is full): the stream's flow-control window is returned to the peer only while it takes them.
    case consuming(Bool)
    /// (inbound, client) The CONNECT was answered 200: DATA may now take the fast path.
    case established
}

/// Carries the DATA frames of spliced HBONE streams between the TLS connection and the
/// streams' ``HBONEStreamDataCodec``s, leaving everything else to NIOHTTP2.
///
/// Sits between the TLS handlers and `NIOHTTP2Handler`. Inbound, it reads frame headers:
/// DATA for a registered stream (without END_STREAM) goes straight to that stream's codec,
/// WINDOW_UPDATE frames are consumed here (this handler owns the send windows), SETTINGS
/// are read for the peer's initial window and frame size and passed on, and every other
/// byte goes to NIOHTTP2 unchanged. Outbound, DATA of registered streams is framed here
/// within the peer's connection and stream windows (queued when they are spent, with the
/// stream reported unwritable); a stream's receive window is returned with WINDOW_UPDATE
/// once half of it is due and only while its reader takes bytes. The connection's receive
/// window is kept here too: every DATA frame received counts against it, and it is topped
/// up to the configured size whenever the peer's view of it falls to half. NIOHTTP2's own
/// connection WINDOW_UPDATEs are dropped on their way out (it only sees part of the DATA);
/// its view of the window stays topped up, so the frames it does see (DATA before a stream
/// is registered, or still in flight for one that has closed) never exceed it.
///
/// NIOHTTP2 still opens, answers, ends and resets streams and owns SETTINGS, PING and
/// GOAWAY: END_STREAM, trailers and RST_STREAM go through it, as do DATA frames with
/// END_STREAM. On a connection with this handler NIOHTTP2 itself must never send DATA
/// with a payload (it would not see the windows), which holds because every stream on
/// such a connection is spliced. What this saves per DATA frame: NIOHTTP2's stream state
/// machine, its flow-control buffers and the stream channel's pipeline and buffering.
final class HBONEDataPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Which end of the connection this is: a server first reads the client's 24-byte preface.
    enum Role { case client, server }

    /// A registered stream.
    final class Stream {
        let id: Int
        fileprivate var codec: HBONEStreamDataCodec?
        fileprivate var sendWindow: Int
        fileprivate var queued = CircularBuffer<ByteBuffer>()
        fileprivate var queuedBytes = 0
        fileprivate var endPending = false
        fileprivate var writable = true
        fileprivate var consuming = true
        fileprivate var inboundOpen = true
        /// Received bytes whose stream window has not been returned yet.
        fileprivate var unreturned = 0
        fileprivate var touched = false
        /// Whether our response HEADERS has gone out (a server's DATA must not overtake its 200,
        /// which NIOHTTP2 holds back while the connection is not writable).
        fileprivate var answered: Bool
        fileprivate var emptyFrames = 0

        fileprivate init(id: Int, codec: HBONEStreamDataCodec, sendWindow: Int, answered: Bool, writable: Bool) {
            self.id = id
            self.codec = codec
            self.sendWindow = sendWindow
            self.answered = answered
            self.writable = writable
        }
    }

    private enum Parse {
        case preface(remaining: Int)
        case header
        case forward(remaining: Int)
        case padLength(Stream, frameLength: Int)
        case data(Stream, remaining: Int, padding: Int)
        case hold(remaining: Int)
    }

    private enum FrameType: UInt8 {
        case data = 0, headers = 1, rstStream = 3, settings = 4, windowUpdate = 8
    }

    private static let endStream: UInt8 = 0x1
    private static let padded: UInt8 = 0x8
    private static let ack: UInt8 = 0x1
    private static let maxWindow = Int(Int32.max)
    /// Consecutive empty DATA frames (without END_STREAM) tolerated on a stream: an endless run costs CPU for nothing (CVE-2019-9518).
    private static let maxEmptyFrames = 16
    /// Unregistered streams whose WINDOW_UPDATEs or answers are remembered for their registration.
    private static let maxEarlyStreams = 1024

    private let localStreamWindow: Int
    private let localConnectionWindow: Int
    private let localMaxFrame: Int
    private let role: Role
    private var parse: Parse
    /// Send-window credit (WINDOW_UPDATE) for streams not registered yet.
    private var earlyCredit: [Int: Int] = [:]
    /// Streams whose 200 went out before they registered.
    private var earlyAnswered: Set<Int> = []
    /// The highest stream ID the peer opened (for GOAWAY).
    private var highestPeerStream = 0
    /// The connection receive window is raised to its configured size once the peer's first
    /// frame has arrived (our SETTINGS are out by then), and topped up afterwards.
    private enum ConnectionWindow { case beforeFirstFrame, raiseDue, raised }
    private var connectionWindow = ConnectionWindow.beforeFirstFrame
    private var streams: [Int: Stream] = [:]
    private var blocked: [Stream] = []
    private var touched: [Stream] = []
    private var connectionSendWindow = 65_535
    private var peerInitialWindow = 65_535
    private var peerMaxFrame = 16_384
    /// The peer's view of our connection receive window.
    private var receiveWindow = 65_535
    /// Whether this read burst passed anything on to NIOHTTP2 (which then needs its channelReadComplete).
    private var passedOn = false
    private var parentWritable = true
    private var wroteSinceFlush = false
    /// The peer broke the protocol here (GOAWAY sent) or the connection went inactive: nothing more
    /// is read, passed on or registered. NIOHTTP2 closes the connection in the middle of a read that
    /// holds more frames (on a connection error); frames passed on after that would open stream
    /// channels nothing ever closes, and those hold the connection's channel, pipeline and handlers
    /// in a cycle (found by the hbone-frames fuzzer).
    private var stopped = false
    /// The frame header being read when it is split between reads.
    private var partialHeader: [UInt8] = []
    /// A WINDOW_UPDATE or SETTINGS frame (header included) being gathered.
    private var held = ByteBuffer()
    private var scratch = ByteBuffer()
    private var context: ChannelHandlerContext?

    init(role: Role, settings: HBONEHTTP2Settings) {
        self.role = role
        self.parse = role == .server ? .preface(remaining: 24) : .header
        self.localStreamWindow = settings.streamWindow
        self.localConnectionWindow = settings.connectionWindow
        self.localMaxFrame = settings.maxFrameSize
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        scratch = context.channel.allocator.buffer(capacity: 64)
        parentWritable = context.channel.isWritable
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        dropStreams()
        self.context = nil
    }

    // MARK: Streams

    /// Registers the stream `id` (on this connection's event loop): from now on its DATA takes the fast path.
    func register(_ codec: HBONEStreamDataCodec, streamID id: Int) -> Stream? {
        guard context != nil, !stopped, streams[id] == nil else { return nil }
        // A client registers on the 200 (its CONNECT went out long before); a server once its 200 has.
        let answered = role == .client || earlyAnswered.remove(id) != nil
        let credit = earlyCredit.removeValue(forKey: id) ?? 0
        let stream = Stream(id: id, codec: codec, sendWindow: peerInitialWindow + credit, answered: answered, writable: parentWritable)
        streams[id] = stream
        return stream
    }

    /// Forgets a stream (closed or reset); bytes still queued for it are dropped.
    func deregister(_ stream: Stream) {
        stream.codec = nil
        stream.queued.removeAll()
        stream.queuedBytes = 0
        streams[stream.id] = nil
        blocked.removeAll { $0 === stream }
    }

    private func dropStreams() {
        for stream in streams.values {
            stream.codec = nil
            stream.queued.removeAll()
        }
        streams.removeAll()
        blocked.removeAll()
        touched.removeAll()
    }

    /// The stream's reader stopped or resumed taking bytes. On resuming, the window is returned
    /// once half of it is due, as after a read: a peer that spent its whole window has all of it
    /// due, and one with more than half left sends on, so that read returns it. (Returning every
    /// byte at each resume cost a WINDOW_UPDATE, a write here and a wake-up there, per 250 KB of
    /// a bulk transfer whose upstream socket's buffer filled and drained.)
    func setConsuming(_ stream: Stream, _ consuming: Bool) {
        stream.consuming = consuming
        if consuming, returnWindows(of: stream, minimum: localStreamWindow / 2) {
            flush()
        }
    }

    // MARK: Outbound

    /// Sends `bytes` as DATA on `stream`, or queues them behind earlier bytes or spent windows.
    func send(_ stream: Stream, _ bytes: ByteBuffer) {
        guard let context, stream.codec != nil, bytes.readableBytes > 0 else { return }
        if stream.queuedBytes > 0 || !stream.answered {
            enqueue(stream, bytes)
            return
        }
        var bytes = bytes
        emit(stream, &bytes, context: context)
        if bytes.readableBytes > 0 {
            enqueue(stream, bytes)
        }
    }

    /// Sends END_STREAM through the codec once everything queued for `stream` is out.
    func closeOutput(_ stream: Stream) {
        if stream.queuedBytes == 0 {
            stream.codec?.sendEndStream()
        } else {
            stream.endPending = true
        }
    }

    func flush() {
        guard let context, wroteSinceFlush else { return }
        wroteSinceFlush = false
        context.flush()
    }

    private func enqueue(_ stream: Stream, _ bytes: ByteBuffer) {
        if stream.queuedBytes == 0 { blocked.append(stream) }
        stream.queued.append(bytes)
        stream.queuedBytes += bytes.readableBytes
        updateWritability(stream)
    }

    /// Payloads up to this size are written in one buffer with their frame header.
    private static let copiedPayloadBytes = 2048

    /// Writes as much of `bytes` as the windows and the peer's frame size allow.
    private func emit(_ stream: Stream, _ bytes: inout ByteBuffer, context: ChannelHandlerContext) {
        while bytes.readableBytes > 0 {
            let length = min(bytes.readableBytes, connectionSendWindow, stream.sendWindow, peerMaxFrame)
            guard length > 0 else { return }
            var payload = bytes.readSlice(length: length)!
            scratch.clear(minimumCapacity: length <= Self.copiedPayloadBytes ? 9 + length : 9)
            writeDataHeader(length: length, streamID: stream.id)
            if length <= Self.copiedPayloadBytes {
                // One small buffer: the TLS handler seals header and payload as one record without further copies.
                scratch.writeBuffer(&payload)
                context.write(wrapOutboundOut(.byteBuffer(scratch)), promise: nil)
            } else {
                context.write(wrapOutboundOut(.byteBuffer(scratch)), promise: nil)
                context.write(wrapOutboundOut(.byteBuffer(payload)), promise: nil)
            }
            wroteSinceFlush = true
            connectionSendWindow -= length
            stream.sendWindow -= length
        }
    }

    private func writeDataHeader(length: Int, streamID: Int) {
        scratch.writeInteger(UInt8(truncatingIfNeeded: length >> 16))
        scratch.writeInteger(UInt16(truncatingIfNeeded: length))
        scratch.writeInteger(FrameType.data.rawValue)
        scratch.writeInteger(UInt8(0))
        scratch.writeInteger(UInt32(truncatingIfNeeded: streamID))
    }

    private func writeWindowUpdate(streamID: Int, increment: Int, context: ChannelHandlerContext) {
        scratch.clear(minimumCapacity: 13)
        scratch.writeBytes([0, 0, 4, FrameType.windowUpdate.rawValue, 0])
        scratch.writeInteger(UInt32(truncatingIfNeeded: streamID))
        scratch.writeInteger(UInt32(truncatingIfNeeded: increment))
        context.write(wrapOutboundOut(.byteBuffer(scratch)), promise: nil)
        wroteSinceFlush = true
    }

    /// Sends what the windows now allow from the queues, in the order the streams were blocked.
    private func drain() {
        guard let context, !blocked.isEmpty else { return }
        var index = 0
        while index < blocked.count, connectionSendWindow > 0 {
            let stream = blocked[index]
            guard stream.answered else {
                index += 1
                continue
            }
            while var bytes = stream.queued.first {
                let before = bytes.readableBytes
                emit(stream, &bytes, context: context)
                stream.queuedBytes -= before - bytes.readableBytes
                if bytes.readableBytes > 0 {
                    stream.queued[stream.queued.startIndex] = bytes
                    break
                }
                stream.queued.removeFirst()
            }
            if stream.queuedBytes == 0 {
                blocked.remove(at: index)
                updateWritability(stream)
                if stream.endPending {
                    stream.endPending = false
                    stream.codec?.sendEndStream()
                }
            } else {
                index += 1
            }
        }
        flush()
    }

    private func updateWritability(_ stream: Stream) {
        let writable = parentWritable && stream.queuedBytes == 0
        guard writable != stream.writable else { return }
        stream.writable = writable
        stream.codec?.writabilityChanged(writable)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // NIOHTTP2 writes each frame it encodes as one buffer (a DATA payload apart, which it
        // never sends on such a connection): note its connection WINDOW_UPDATEs (the peer adds
        // them to our receive window) and, on a server, the response HEADERS that let a stream's DATA go.
        if case .byteBuffer(let bytes) = unwrapOutboundIn(data), bytes.readableBytes >= 9 {
            let type = bytes.getInteger(at: bytes.readerIndex + 3, as: UInt8.self)
            let streamID = Int(bytes.getInteger(at: bytes.readerIndex + 5, as: UInt32.self)! & 0x7FFF_FFFF)
            if type == FrameType.windowUpdate.rawValue, streamID == 0, bytes.readableBytes == 13 {
                receiveWindow += Int(bytes.getInteger(at: bytes.readerIndex + 9, as: UInt32.self)! & 0x7FFF_FFFF)
            } else if type == FrameType.headers.rawValue, role == .server {
                context.write(data, promise: promise)
                answered(streamID, endsStream: bytes.getInteger(at: bytes.readerIndex + 4, as: UInt8.self)! & Self.endStream != 0)
                return
            }
        }
        context.write(data, promise: promise)
    }

    /// Our HEADERS for `streamID` has gone out: its DATA may follow.
    private func answered(_ streamID: Int, endsStream: Bool) {
        if let stream = streams[streamID] {
            guard !stream.answered else { return }
            stream.answered = true
            drain()
        } else if !endsStream {
            if earlyAnswered.count >= Self.maxEarlyStreams { earlyAnswered.removeAll() }
            earlyAnswered.insert(streamID)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        parentWritable = context.channel.isWritable
        for stream in streams.values { updateWritability(stream) }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !stopped else { return }
        var run: ByteBuffer?  // `bytes` as it was where the bytes to pass on to NIOHTTP2 begin
        func passOn(_ count: Int) {
            if run == nil { run = bytes }
            bytes.moveReaderIndex(forwardBy: count)
        }
        func endRun() {
            guard var start = run, !stopped else { return }
            run = nil
            passedOn = true
            context.fireChannelRead(wrapInboundOut(start.readSlice(length: bytes.readerIndex - start.readerIndex)!))
        }
        while bytes.readableBytes > 0, !stopped {
            switch parse {
            case .preface(let remaining):
                let count = min(remaining, bytes.readableBytes)
                passOn(count)
                parse = remaining == count ? .header : .preface(remaining: remaining - count)
            case .header:
                // The 9-byte frame header: read in place, or gathered when a read splits it.
                let split = !partialHeader.isEmpty || bytes.readableBytes < 9
                var header = bytes
                if split {
                    let count = min(9 - partialHeader.count, bytes.readableBytes)
                    endRun()
                    partialHeader += bytes.readBytes(length: count)!
                    guard partialHeader.count == 9 else { continue }
                    header = context.channel.allocator.buffer(bytes: partialHeader)
                    partialHeader = []
                }
                let start = header.readerIndex
                let length = Int(header.getInteger(at: start, as: UInt16.self)!) << 8 | Int(header.getInteger(at: start + 2, as: UInt8.self)!)
                let type = header.getInteger(at: start + 3, as: UInt8.self)!
                let flags = header.getInteger(at: start + 4, as: UInt8.self)!
                let streamID = Int(header.getInteger(at: start + 5, as: UInt32.self)! & 0x7FFF_FFFF)
                if connectionWindow == .beforeFirstFrame { connectionWindow = .raiseDue }
                if type == FrameType.data.rawValue {
                    receiveWindow -= length
                    guard receiveWindow >= 0 else {
                        fail(context: context, code: 0x3, HBONEError.protocolViolation("DATA beyond the connection's receive window (\(-receiveWindow) bytes over)"))
                        return
                    }
                }
                switch route(length: length, type: type, flags: flags, streamID: streamID) {
                case .fast(let stream):
                    if split { endRun() } else { endRun(); bytes.moveReaderIndex(forwardBy: 9) }
                    stream.unreturned += length
                    if stream.unreturned > localStreamWindow {
                        fail(context: context, code: 0x3, HBONEError.protocolViolation("the peer sent \(stream.unreturned) bytes on stream \(stream.id), more than its \(localStreamWindow)-byte window"))
                        return
                    }
                    if length == 0 {
                        stream.emptyFrames += 1
                        guard stream.emptyFrames <= Self.maxEmptyFrames else {
                            fail(context: context, code: 0xB, HBONEError.protocolViolation("\(stream.emptyFrames) empty DATA frames in a row on stream \(stream.id)"))
                            return
                        }
                    } else {
                        stream.emptyFrames = 0
                    }
                    if flags & Self.padded != 0 {
                        guard length > 0 else {
                            fail(context: context, code: 0x1, HBONEError.protocolViolation("padded DATA on stream \(stream.id) has no room for its pad length"))
                            return
                        }
                        parse = .padLength(stream, frameLength: length)
                    } else {
                        parse = length == 0 ? .header : .data(stream, remaining: length, padding: 0)
                    }
                case .hold:
                    if split {
                        held = header
                    } else {
                        endRun()
                        held = context.channel.allocator.buffer(capacity: 9 + length)
                        var headerBytes = bytes.readSlice(length: 9)!
                        held.writeBuffer(&headerBytes)
                    }
                    parse = .hold(remaining: length)
                    if length == 0 { finishHeld(context: context) }
                case .forward:
                    if split {
                        passedOn = true
                        context.fireChannelRead(wrapInboundOut(header))
                    } else {
                        passOn(9)
                    }
                    parse = length == 0 ? .header : .forward(remaining: length)
                }
            case .forward(let remaining):
                let count = min(remaining, bytes.readableBytes)
                passOn(count)
                parse = remaining == count ? .header : .forward(remaining: remaining - count)
            case .padLength(let stream, let frameLength):
                let padding = Int(bytes.readInteger(as: UInt8.self)!)
                guard padding < frameLength else {
                    fail(context: context, code: 0x1, HBONEError.protocolViolation("DATA on stream \(stream.id) has \(padding) bytes of padding in a \(frameLength)-byte frame"))
                    return
                }
                let remaining = frameLength - 1 - padding
                parse = remaining + padding == 0 ? .header : .data(stream, remaining: remaining, padding: padding)
            case .data(let stream, let remaining, let padding):
                if remaining > 0 {
                    let count = min(remaining, bytes.readableBytes)
                    deliver(bytes.readSlice(length: count)!, to: stream)
                    parse = remaining == count && padding == 0 ? .header : .data(stream, remaining: remaining - count, padding: padding)
                } else {
                    let count = min(padding, bytes.readableBytes)
                    bytes.moveReaderIndex(forwardBy: count)
                    parse = padding == count ? .header : .data(stream, remaining: 0, padding: padding - count)
                }
            case .hold(let remaining):
                let count = min(remaining, bytes.readableBytes)
                var part = bytes.readSlice(length: count)!
                held.writeBuffer(&part)
                parse = .hold(remaining: remaining - count)
                if remaining == count { finishHeld(context: context) }
            }
        }
        endRun()
    }

    private enum Route {
        case fast(Stream)
        case hold
        case forward
    }

    /// Where a frame goes, from its header.
    private func route(length: Int, type: UInt8, flags: UInt8, streamID: Int) -> Route {
        switch FrameType(rawValue: type) {
        case .data:
            guard let stream = streams[streamID], stream.inboundOpen else { return .forward }
            if flags & Self.endStream != 0 || length > localMaxFrame {
                // The last DATA frame (or an oversized one, for NIOHTTP2 to refuse) ends the stream through NIOHTTP2.
                stream.inboundOpen = false
                return .forward
            }
            return .fast(stream)
        case .headers, .rstStream:
            // Trailers or a reset: nothing more may arrive on the fast path for this stream.
            streams[streamID]?.inboundOpen = false
            if role == .server, FrameType(rawValue: type) == .headers { highestPeerStream = max(highestPeerStream, streamID) }
            earlyCredit[streamID] = nil
            return .forward
        case .windowUpdate:
            return length == 4 ? .hold : .forward
        case .settings:
            // Malformed or oversized SETTINGS go straight to NIOHTTP2, which refuses them.
            return flags & Self.ack == 0 && length % 6 == 0 && length <= localMaxFrame ? .hold : .forward
        case nil:
            return .forward
        }
    }

    private func deliver(_ bytes: ByteBuffer, to stream: Stream) {
        guard let codec = stream.codec else { return }
        if !stream.touched {
            stream.touched = true
            touched.append(stream)
        }
        codec.receive(bytes)
    }

    /// A whole WINDOW_UPDATE or SETTINGS frame has been gathered in `held`.
    private func finishHeld(context: ChannelHandlerContext) {
        parse = .header
        let frame = held
        held = ByteBuffer()
        let type = frame.getInteger(at: frame.readerIndex + 3, as: UInt8.self)!
        let streamID = Int(frame.getInteger(at: frame.readerIndex + 5, as: UInt32.self)! & 0x7FFF_FFFF)
        if type == FrameType.windowUpdate.rawValue {
            let increment = Int(frame.getInteger(at: frame.readerIndex + 9, as: UInt32.self)! & 0x7FFF_FFFF)
            if streamID == 0, increment > 0 {
                connectionSendWindow += increment
                guard connectionSendWindow <= Self.maxWindow else {
                    fail(context: context, code: 0x3, HBONEError.protocolViolation("a WINDOW_UPDATE took the connection's send window to \(connectionSendWindow) bytes, above 2^31-1"))
                    return
                }
                drain()
            } else if let stream = streams[streamID], increment > 0 {
                stream.sendWindow += increment
                guard stream.sendWindow <= Self.maxWindow else {
                    // RFC 9113 §6.9.1: a stream error; the stream is reset (FLOW_CONTROL_ERROR), the connection lives on.
                    let codec = stream.codec
                    deregister(stream)
                    codec?.resetForFlowControl()
                    return
                }
                drain()
            } else {
                // Zero increments (NIOHTTP2 refuses them) and streams not on the fast path, whose
                // credit is also kept for their registration.
                if streamID != 0, increment > 0 {
                    if earlyCredit.count >= Self.maxEarlyStreams { earlyCredit.removeAll() }
                    earlyCredit[streamID, default: 0] += increment
                }
                passedOn = true
                context.fireChannelRead(wrapInboundOut(frame))
            }
            return
        }
        // SETTINGS (not an ACK): the peer's initial stream window and frame size, then NIOHTTP2 applies and ACKs them.
        var index = frame.readerIndex + 9
        while index + 6 <= frame.writerIndex {
            let identifier = frame.getInteger(at: index, as: UInt16.self)!
            let value = Int(frame.getInteger(at: index + 2, as: UInt32.self)!)
            index += 6
            switch identifier {
            case 0x4 where value <= Self.maxWindow:
                let delta = value - peerInitialWindow
                peerInitialWindow = value
                for stream in streams.values {
                    stream.sendWindow += delta
                    guard stream.sendWindow <= Self.maxWindow else {
                        fail(context: context, code: 0x3, HBONEError.protocolViolation("SETTINGS_INITIAL_WINDOW_SIZE \(value) took stream \(stream.id)'s send window above 2^31-1"))
                        return
                    }
                }
            case 0x5 where (16_384...16_777_215).contains(value):
                peerMaxFrame = value
            default:
                break
            }
        }
        passedOn = true
        context.fireChannelRead(wrapInboundOut(frame))
        drain()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard !stopped else {
            // NIOHTTP2 still completes what it was passed before the stop: a read it was given and
            // never saw completed would keep stream channels it opened (and the connection) alive.
            if passedOn {
                passedOn = false
                context.fireChannelReadComplete()
            }
            return
        }
        if !touched.isEmpty {
            let streams = touched
            touched.removeAll(keepingCapacity: true)
            for stream in streams {
                stream.touched = false
                stream.codec?.receiveComplete()
                returnWindows(of: stream, minimum: localStreamWindow / 2)
            }
        }
        switch connectionWindow {
        case .beforeFirstFrame:
            break
        case .raiseDue:
            // The first raise goes through NIOHTTP2, so that its own view of the window (which
            // checks the DATA it still sees) grows with the peer's; write() counts it.
            connectionWindow = .raised
            let increment = localConnectionWindow - receiveWindow
            if increment > 0, (try? context.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self)) != nil {
                context.channel.writeAndFlush(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment)), promise: nil)
            } else if increment > 0 {
                writeWindowUpdate(streamID: 0, increment: increment, context: context)
                receiveWindow += increment
            }
        case .raised where receiveWindow <= localConnectionWindow / 2:
            writeWindowUpdate(streamID: 0, increment: localConnectionWindow - receiveWindow, context: context)
            receiveWindow = localConnectionWindow
        case .raised:
            break
        }
        flush()
        // A burst of fast DATA only: NIOHTTP2 and the handlers after it read nothing, so nothing for them to complete.
        if passedOn {
            passedOn = false
            context.fireChannelReadComplete()
        }
    }

    /// Returns a stream's window when at least `minimum` bytes are due and its reader takes bytes.
    @discardableResult
    private func returnWindows(of stream: Stream, minimum: Int) -> Bool {
        guard let context, stream.consuming, stream.codec != nil, stream.unreturned >= minimum, stream.unreturned > 0 else { return false }
        writeWindowUpdate(streamID: stream.id, increment: stream.unreturned, context: context)
        stream.unreturned = 0
        return true
    }

    /// Ends the connection after a peer broke the protocol on the fast path: GOAWAY with `code`, then close.
    private func fail(context: ChannelHandlerContext, code: UInt32, _ error: HBONEError) {
        stopped = true
        let lastStream = role == .server ? highestPeerStream : 0
        scratch.clear()
        scratch.writeBytes([0, 0, 8, 7, 0, 0, 0, 0, 0])
        scratch.writeInteger(UInt32(lastStream))
        scratch.writeInteger(code)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(scratch)), promise: nil)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopped = true
        dropStreams()
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension HBONEDataPath: Sendable {}

@available(*, unavailable)
extension HBONEDataPath.Stream: Sendable {}
