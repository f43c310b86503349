#if os(Linux)
import CLibBPF
import Glibc
import Synchronization

/// Reads records that programs submit to a `BPF_MAP_TYPE_RINGBUF` map
/// (libbpf `ring_buffer__new` / `ring_buffer__poll`).
///
/// ``poll(timeoutMilliseconds:)`` returns the raw records available within the
/// timeout; ``poll(as:timeoutMilliseconds:)`` decodes fixed-layout records such
/// as `mesh_auth_event`. The reader keeps its own duplicate of the map's file
/// descriptor and frees libbpf's state on ``close()`` or deinit.
public final class RingBufferReader: Sendable {
    private final class Sink: @unchecked Sendable {
        // Touched only inside ring_buffer__poll, which runs under `state`'s lock.
        var records: [[UInt8]] = []
    }

    private struct State: ~Copyable {
        let ring: OpaquePointer
        /// The callback's context, retained until ``close()``.
        let sink: Unmanaged<Sink>
    }

    private let state: Mutex<State?>
    /// Name of the ring buffer map.
    public let mapName: String

    /// Opens a reader on `map`, which must be a ring buffer.
    public init(map: BPFMap) throws(BPFError) {
        guard map.info.type == .ringBuffer else {
            throw .invalidArgument(operation: "ring buffer reader", argument: "map \(map.info.name) is \(map.info.type), not a ring buffer")
        }
        let sink = Unmanaged.passRetained(Sink())
        let ring: OpaquePointer
        do throws(BPFError) {
            ring = try map.withFileDescriptor { fd throws(BPFError) -> OpaquePointer in
                let callback: ring_buffer_sample_fn = { ctx, data, size in
                    guard let ctx, let data else { return 0 }
                    let sink = Unmanaged<Sink>.fromOpaque(ctx).takeUnretainedValue()
                    sink.records.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
                    return 0
                }
                guard let rb = ring_buffer__new(fd, callback, sink.toOpaque(), nil) else {
                    throw BPFError.from(errno: errno, operation: "ring_buffer__new on \(map.info.name)")
                }
                return rb
            }
        } catch {
            sink.release()
            throw error
        }
        state = Mutex(State(ring: ring, sink: sink))
        mapName = map.info.name
    }

    deinit { close() }

    /// Waits up to `timeoutMilliseconds` (0: no wait, -1: forever) and returns the records that arrived.
    public func poll(timeoutMilliseconds: Int32) throws(BPFError) -> [[UInt8]] {
        let name = mapName
        return try state.withLock { (state: inout State?) throws(BPFError) -> [[UInt8]] in
            guard let ring = state?.ring, let sink = state?.sink.takeUnretainedValue() else { throw BPFError.closed("ring buffer reader \(name)") }
            let rc = ring_buffer__poll(ring, timeoutMilliseconds)
            if rc < 0 && -rc != EINTR {
                throw BPFError.from(errno: -rc, operation: "poll ring buffer \(name)")
            }
            defer { sink.records.removeAll(keepingCapacity: true) }
            return sink.records
        }
    }

    /// Like ``poll(timeoutMilliseconds:)``, decoding each record as `T`; records of another size are skipped.
    public func poll<T: BPFMapRepresentable>(as _: T.Type, timeoutMilliseconds: Int32) throws(BPFError) -> [T] {
        try poll(timeoutMilliseconds: timeoutMilliseconds).compactMap { record in
            record.count >= T.bpfSize ? record.withUnsafeBytes { T(bpfBytes: UnsafeRawBufferPointer(rebasing: $0[0..<T.bpfSize])) } : nil
        }
    }

    /// The records as an asynchronous sequence, decoded as `T`.
    ///
    /// A dedicated thread polls with `pollIntervalMilliseconds` timeouts (so the
    /// cooperative pool never blocks) until the consuming task is cancelled, the
    /// stream is dropped, or the reader is closed (the stream then finishes).
    public func events<T: BPFMapRepresentable>(as _: T.Type, pollIntervalMilliseconds: Int32 = 100) -> AsyncThrowingStream<T, any Error> {
        AsyncThrowingStream<T, any Error> { (continuation: AsyncThrowingStream<T, any Error>.Continuation) in
            let stop = StopFlag()
            continuation.onTermination = { @Sendable _ in stop.set() }
            let started = PollThread.start { [self] in
                while !stop.isSet {
                    do {
                        for event in try self.poll(as: T.self, timeoutMilliseconds: pollIntervalMilliseconds) {
                            continuation.yield(event)
                        }
                    } catch {
                        if case BPFError.closed = error { break }
                        continuation.finish(throwing: error)
                        return
                    }
                }
                continuation.finish()
            }
            if !started {
                continuation.finish(throwing: BPFError.system(operation: "start ring buffer poll thread", errno: EAGAIN))
            }
        }
    }

    /// Frees the reader; ``poll(timeoutMilliseconds:)`` afterwards throws ``BPFError/closed(_:)``.
    public func close() {
        state.withLock { state in
            if let ring = state?.ring { ring_buffer__free(ring) }
            state?.sink.release()
            state = nil
        }
    }
}

/// A flag set once, read from another thread.
private final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Starts a detached POSIX thread running `body` (for blocking polls).
private enum PollThread {
    final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Body>.fromOpaque(raw).takeRetainedValue().run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            return false
        }
        pthread_detach(thread)
        return true
    }
}
#endif
