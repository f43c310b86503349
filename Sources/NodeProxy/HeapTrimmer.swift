import CNodeSockets
import Logging

/// Returns freed heap memory to the kernel after load has passed.
///
/// glibc's allocator keeps the memory of freed connection buffers in its arenas (one per
/// thread that allocates, so one per event loop) instead of giving it back: after 10,000
/// concurrent connections through ztunnel have closed, its RSS stays where the peak left it
/// (measured: 160 MB, against 55 MB before; `scripts/soak`). `malloc_trim(0)` releases the free
/// pages of every arena. The trimmer calls it every `interval` unless the heap in use grew since
/// the last look (reading glibc's `mallinfo2`) by more than a little (``shouldTrim(inUse:last:)``):
/// a proxy taking on load is left alone, one whose load has passed gives the pages back. On a
/// small heap a call costs microseconds.
public struct HeapTrimmer: Sendable {
    public var interval: Duration
    public var logger: Logger

    public init(interval: Duration = .seconds(30), logger: Logger) {
        self.interval = interval
        self.logger = logger
    }

    /// Trims until the task is cancelled.
    public func run() async {
        var lastInUse = Self.bytesInUse()
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let inUse = Self.bytesInUse()
            defer { lastInUse = inUse }
            guard Self.shouldTrim(inUse: inUse, last: lastInUse) else { continue }
            let released = Self.trim()
            logger.debug("heap trimmed", metadata: ["in_use_bytes": "\(inUse)", "released": "\(released)"])
        }
    }

    /// Whether to trim, given the bytes in use now and at the last look: unless they grew by more
    /// than 1 MiB or a sixteenth. Load that is building grows the heap by far more in an interval;
    /// what a quiet proxy allocates meanwhile (a metrics scrape, an admin page, a log line) must
    /// not hold the trim off (with glibc's tcache off, as the lab runs ztunnel, every such block
    /// counts in use at once instead of being taken from blocks already counted).
    static func shouldTrim(inUse: Int, last: Int) -> Bool {
        inUse <= last + max(1 << 20, last / 16)
    }

    /// Bytes the allocator has handed out and not had back (glibc `mallinfo2().uordblks` plus mmapped blocks).
    public static func bytesInUse() -> Int { Int(swiftmesh_node_heap_in_use()) }

    /// Releases free heap pages to the kernel now; true when any were released.
    @discardableResult
    public static func trim() -> Bool { swiftmesh_node_heap_trim() == 1 }
}
