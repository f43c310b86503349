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
        var ring: OpaquePointer?
        let sink: Sink
        let retained: Unmanaged<Sink>
    }

    private let state: Mutex<State?>
    /// Name of the ring buffer map.
    public let mapName: String

    /// Opens a reader on `map`, which must be a ring buffer.
    public init(map: BPFMap) throws(BPFError) {
        guard map.info.type == .ringBuffer else {
            throw .invalidArgument(operation: "ring buffer reader", argument: "map \(map.info.name) is \(map.info.type), not a ring buffer")
        }
        let sink = Sink()
        let retained = Unmanaged.passRetained(sink)
        let ring: OpaquePointer? = try map.withFileDescriptor { fd throws(BPFError) -> OpaquePointer? in
            let callback: ring_buffer_sample_fn = { ctx, data, size in
                guard let ctx, let data else { return 0 }
                let sink = Unmanaged<Sink>.fromOpaque(ctx).takeUnretainedValue()
                sink.records.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
                return 0
            }
            guard let rb = ring_buffer__new(fd, callback, retained.toOpaque(), nil) else {
                throw BPFError.from(errno: errno, operation: "ring_buffer__new on \(map.info.name)")
            }
            return rb
        }
        state = Mutex(State(ring: ring, sink: sink, retained: retained))
        mapName = map.info.name
    }

    deinit { close() }

    /// Waits up to `timeoutMilliseconds` (0: no wait, -1: forever) and returns the records that arrived.
    public func poll(timeoutMilliseconds: Int32) throws(BPFError) -> [[UInt8]] {
        let name = mapName
        return try state.withLock { (state: inout State?) throws(BPFError) -> [[UInt8]] in
            guard let ring = state?.ring, let sink = state?.sink else { throw BPFError.closed("ring buffer reader \(name)") }
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

    /// Frees the reader; ``poll(timeoutMilliseconds:)`` afterwards throws ``BPFError/closed(_:)``.
    public func close() {
        state.withLock { state in
            if let ring = state?.ring { ring_buffer__free(ring) }
            state?.retained.release()
            state = nil
        }
    }
}
#endif
