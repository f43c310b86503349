import CNodeSockets
import Logging
import NIOCore
import NIOPosix

/// Returns freed heap memory to the kernel after load has passed.
///
/// glibc's allocator keeps the memory of freed connection buffers in its arenas (one per
/// thread that allocates, up to eight per core, so in ztunnel one per event loop) instead of giving it back: after 10,000
/// concurrent connections through ztunnel have closed, its RSS stays where the peak left it
/// (measured: 160 MB, against 55 MB before; `scripts/soak`). Every `interval`, unless the heap in
/// use grew since the last look (glibc's `mallinfo2`) by more than a little
/// (``shouldTrim(inUse:last:)``), the trimmer gives back what glibc holds free
/// (``trim(on:)``): a proxy taking on load is left alone, one whose load has passed gives the
/// pages back. On a small heap a trim costs about 0.1 ms (0.10 to 0.16 ms median over 20 trims
/// of a 0.9 MB heap with two loops, debug build, four runs of a timing loop added to
/// `HeapTrimmerTests` for the purpose and not kept).
///
/// Free memory sits in two places, and `malloc_trim(0)` reaches only one of them:
/// - free blocks inside an arena: `malloc_trim` returns their whole pages, in every arena;
/// - an arena's top, the free end that the last blocks merged into: `malloc_trim` trims it
///   only in the main arena. An event loop's arena gives back its top when a free there
///   leaves a free block of 64 KiB or more (merging into the top counts). The blocks freed
///   after a burst are small, and glibc keeps small ones unmerged (in its fastbins) until
///   `malloc_trim` consolidates them into the top, after which nothing trims it. So
///   ``trim(on:)`` first frees a 96 KiB block on each event loop (``trimThreadArena()``), then
///   calls `malloc_trim`.
///   Measured with the soak's long phase (10,000 connections held, then closed), the
///   destination node had kept up to 8.6 MiB resident in one loop's top (of 18 MiB), with
///   1.5 MiB of pages holding live blocks in the whole heap.
///
/// glibc also raises its mmap threshold (to the size of the block, up to 32 MiB) whenever a
/// block large enough to have been mapped on its own is freed; after a burst, blocks of a few
/// MiB (tables and buffers sized for 10,000 connections) then come from the event loops' arenas,
/// among small blocks that outlive the burst. The trimmer fixes the thresholds when it starts
/// (``thresholds``).
public struct HeapTrimmer: Sendable {
    public var interval: Duration
    /// The event loops whose threads' arenas hold the proxy's buffers (their tops are trimmed on
    /// them); the group must outlive the trimmer's task (cancel it before shutting the group down).
    public var group: any EventLoopGroup
    public var logger: Logger

    /// glibc's mmap and trim thresholds the trimmer sets: blocks of 512 KiB and more are mapped
    /// on their own (and unmapped when freed) when no arena has free space for them; 1 MiB is glibc's `M_TRIM_THRESHOLD`.
    public static let thresholds = (mmap: 512 << 10, trim: 1 << 20)

    public init(interval: Duration = .seconds(30), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) {
        self.interval = interval
        self.group = group
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
            let trimmed = await Self.trim(on: group)
            logger.debug("heap trimmed", metadata: [
                "in_use_bytes": "\(inUse)", "arena_top_bytes_released": "\(trimmed.topBytes)", "free_pages_released": "\(trimmed.releasedFreePages)",
            ])
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

    /// What a trim gave back.
    public struct Trimmed: Sendable {
        /// Bytes given back from the arenas' tops: the net drop in glibc's `mallinfo2().arena` over
        /// the trim (other threads' growth meanwhile counts against it).
        public var topBytes: Int
        /// Whether `malloc_trim` gave back any free pages.
        public var releasedFreePages: Bool
    }

    /// Trims the top of each of `group`'s loops' arenas, on the loop (``trimThreadArena()``), then
    /// releases the free pages of every arena (``trim()``). The group must outlive the call: a
    /// loop that has shut down runs nothing, and the trim would wait for it forever.
    @discardableResult
    public static func trim(on group: any EventLoopGroup) async -> Trimmed {
        let before = arenaBytes()
        for loop in group.makeIterator() {
            try? await loop.submit { trimThreadArena() }.get()
        }
        let releasedFreePages = trim()
        return Trimmed(topBytes: max(0, before - arenaBytes()), releasedFreePages: releasedFreePages)
    }

    /// Gives back the top of the calling thread's arena beyond glibc's top pad (128 KiB), when the
    /// top has reached the trim threshold: glibc does so when a block of 64 KiB or more is freed
    /// in that arena, and this frees one (96 KiB).
    public static func trimThreadArena() { swiftmesh_node_heap_trim_thread_arena() }

    /// Releases the free pages inside every arena, and the main arena's top (`malloc_trim(0)`);
    /// true when any were released.
    @discardableResult
    public static func trim() -> Bool { swiftmesh_node_heap_trim() == 1 }

    /// Bytes glibc's arenas hold from the system, blocks mapped on their own not counted.
    private static func arenaBytes() -> Int { Int(swiftmesh_node_heap_arena_bytes()) }
}
