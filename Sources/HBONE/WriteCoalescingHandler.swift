import NIOCore

/// Gathers the small writes made between two flushes into one buffer, so that the
/// TLS handler below seals them as one record.
///
/// NIOHTTP2 writes every frame header and every DATA payload as separate buffers,
/// and NIOSSL seals each buffer it is given as a record of its own: without this
/// handler a 1-byte tunnelled message costs two records on the wire (a 9-byte frame
/// header and a 1-byte payload), two AEAD seals here and two opens at the peer.
/// Writes of `passThroughBytes` or more are passed on as they are (after whatever is
/// gathered), so bulk transfers are not copied; nor is a small write that is the only
/// one before its flush.
final class WriteCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Writes this large or larger are not copied.
    static let defaultPassThroughBytes = 4096

    private let passThroughBytes: Int
    /// Reused between flushes: once the TLS handler has sealed it, clearing it does not allocate.
    private var gathered: ByteBuffer?
    private var pending = false
    /// The only small write since the last flush, passed on uncopied if no other follows.
    private var single: ByteBuffer?
    private var promises: [EventLoopPromise<Void>] = []

    init(passThroughBytes: Int = WriteCoalescingHandler.defaultPassThroughBytes) {
        self.passThroughBytes = passThroughBytes
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(var bytes) = unwrapOutboundIn(data), bytes.readableBytes < passThroughBytes else {
            emitGathered(context: context)
            context.write(data, promise: promise)
            return
        }
        if let promise { promises.append(promise) }
        if !pending {
            guard var first = single else {
                single = bytes
                return
            }
            single = nil
            pending = true
            if gathered == nil {
                gathered = context.channel.allocator.buffer(capacity: 1024)
            } else {
                gathered!.clear()
            }
            gathered!.writeBuffer(&first)
        }
        gathered!.writeBuffer(&bytes)
    }

    func flush(context: ChannelHandlerContext) {
        emitGathered(context: context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Whatever was written before a close goes out before it (as NIO's own write buffer would).
        emitGathered(context: context)
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        emitGathered(context: context)
    }

    private func emitGathered(context: ChannelHandlerContext) {
        let bytes: ByteBuffer
        if let first = single {
            single = nil
            bytes = first
        } else if pending, let gathered {
            pending = false
            bytes = gathered
        } else {
            return
        }
        switch promises.count {
        case 0:
            context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: nil)
        case 1:
            context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: promises[0])
            promises.removeAll(keepingCapacity: true)
        default:
            let combined = context.eventLoop.makePromise(of: Void.self)
            for promise in promises { combined.futureResult.cascade(to: promise) }
            promises.removeAll(keepingCapacity: true)
            context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: combined)
        }
    }
}

@available(*, unavailable)
extension WriteCoalescingHandler: Sendable {}
