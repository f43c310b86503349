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
///
/// glibc raises its mmap threshold (to the size of the block, up to 32 MiB) whenever a block
/// large enough to have been mapped on its own is freed; after a burst, blocks of a few MiB
/// (tables and buffers sized for 10,000 connections) then come from the event loops' arenas,
/// among small blocks that outlive the burst. The trimmer fixes the thresholds when it starts
/// (``thresholds``), which made the typical case better but not the worst one. Measured with the
/// soak's long phase (10,000 connections held, then closed; anonymous memory about a minute later
/// against before), the destination node kept 3.2 to 8.9 MiB in four runs with glibc's own
/// thresholds; with fixed ones 0.7 to 2.3 MiB in five of seven runs, but 8.7 and 17.9 MiB in the
/// other two. What stays then is not in use (1.7 MiB in use, 13.9 MiB resident after a
/// `malloc_trim` called from gdb): small blocks that outlive the burst, spread over the pages of
/// one event loop's arena, keep those pages resident.
public struct HeapTrimmer: Sendable {
    public var interval: Duration
    public var logger: Logger

    /// glibc's mmap and trim thresholds the trimmer sets: blocks of 512 KiB and more are mapped
    /// on their own (and unmapped when freed) when no arena has free space for them; 1 MiB is glibc's `M_TRIM_THRESHOLD`.
    public static let thresholds = (mmap: 512 << 10, trim: 1 << 20)

    public init(interval: Duration = .seconds(30), logger: Logger) {
        self.interval = interval
        self.logger = logger
    }

    /// Fixes the allocator's thresholds, then trims until the task is cancelled.
    public func run() async {
        if !Self.fixThresholds() { logger.warning("could not set the allocator's mmap and trim thresholds (mallopt)") }
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

    /// Sets glibc's mmap and trim thresholds to ``thresholds`` (which also stops glibc from raising them); true when set.
    @discardableResult
    public static func fixThresholds() -> Bool {
        swiftmesh_node_heap_thresholds(thresholds.mmap, thresholds.trim) == 1
    }

    /// Releases free heap pages to the kernel now; true when any were released.
    @discardableResult
    public static func trim() -> Bool { swiftmesh_node_heap_trim() == 1 }
}
