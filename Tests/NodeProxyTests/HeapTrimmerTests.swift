import Glibc
import NIOPosix
import MeshTestSupport
import Testing
@testable import NodeProxy

/// When the trimmer gives freed heap back: load building is left alone, a quiet proxy is trimmed.
@Suite struct HeapTrimmerTests {
    @Test("trims when the heap shrank, stayed or grew by a little (up to 1 MiB or a sixteenth); not while it grows by more")
    func decision() {
        let mib = 1 << 20
        #expect(HeapTrimmer.shouldTrim(inUse: 2 * mib, last: 60 * mib), "load has passed")
        #expect(HeapTrimmer.shouldTrim(inUse: 2 * mib, last: 2 * mib))
        #expect(HeapTrimmer.shouldTrim(inUse: 2 * mib + 40_000, last: 2 * mib), "a metrics scrape's worth")
        #expect(HeapTrimmer.shouldTrim(inUse: 3 * mib, last: 2 * mib), "1 MiB on a small heap")
        #expect(!HeapTrimmer.shouldTrim(inUse: 3 * mib + 1, last: 2 * mib), "more than 1 MiB on a small heap: load building")
        #expect(HeapTrimmer.shouldTrim(inUse: 68 * mib, last: 64 * mib), "a sixteenth of a large heap")
        #expect(!HeapTrimmer.shouldTrim(inUse: 69 * mib, last: 64 * mib))
        #expect(!HeapTrimmer.shouldTrim(inUse: 60 * mib, last: 2 * mib), "a burst")
    }

    @Test("glibc reports a heap in use (the figure the decision reads)")
    func glibc() {
        #expect(HeapTrimmer.bytesInUse() > 0)
    }

    @Test("with the thresholds fixed, 1 MiB blocks are mapped on their own even after a 16 MiB one was freed")
    func largeBlocksStayMapped() throws {
        #expect(HeapTrimmer.fixThresholds())
        // Freeing a mapped 16 MiB block is what makes glibc raise its mmap threshold to 16 MiB (and put
        // 1 MiB blocks in the arenas, among small ones) unless the thresholds are fixed.
        let large = try #require(malloc(16 << 20))
        free(large)
        // A block is carved from an arena whenever some free space there is large enough, whatever the
        // threshold, and this process's other tests leave some: of 128 blocks (not touched, so never resident)
        // most must still have been mapped.
        let blocks = try (0..<128).map { _ in try #require(malloc(1 << 20)) }
        defer { for block in blocks { free(block) } }
        // glibc's chunk header: the size word before the block, bit 1 set for a mapped chunk (IS_MMAPPED).
        let mapped = blocks.filter { $0.load(fromByteOffset: -MemoryLayout<Int>.size, as: Int.self) & 0x2 != 0 }.count
        #expect(mapped >= 64, "\(mapped) of 128 blocks of 1 MiB mapped on their own")
    }

    @Test("a trim on a group trims each loop's arena there, then every arena's free pages")
    func trimOnGroup() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        // A loop's thread fills and frees 8 MiB of small blocks, consolidated into its arena's top by a
        // malloc_trim, which gives back the top of no arena but the main one: the group's trim does.
        let loop = group.next()
        let (pages, afterMallocTrim) = try await loop.submit {
            // Linked through their first word: no array, whose own free (a large block) would trim the arena.
            var head: UnsafeMutableRawPointer?
            var (low, high) = (UInt.max, UInt.min)
            for _ in 0..<100_000 {
                let block = malloc(64)!
                memset(block, 1, 64)
                block.storeBytes(of: head, as: UnsafeMutableRawPointer?.self)
                head = block
                (low, high) = (min(low, UInt(bitPattern: block)), max(high, UInt(bitPattern: block) + 64))
            }
            while let block = head {
                head = block.load(as: UnsafeMutableRawPointer?.self)
                free(block)
            }
            HeapTrimmer.trim()
            let pages = Self.wholePages(from: low, to: high)
            return (pages, Self.residentPages(pages))
        }.get()
        let trimmed = await HeapTrimmer.trim(on: group)
        let resident = Self.residentPages(pages)
        #expect(pages.count > 1_000)
        #expect(resident < pages.count / 10, "\(resident) of \(pages.count) pages still resident (\(afterMallocTrim) after malloc_trim alone)")
        // Whether malloc_trim alone gave them back depends on the arena the loop's thread got: the
        // main one (when the process has as many arenas as glibc allows) has its top trimmed by it.
        if afterMallocTrim > pages.count / 2 {
            #expect(trimmed.topBytes >= 4 << 20, "\(trimmed)")
        }
        try await group.shutdownGracefully()
    }

    /// The pages wholly inside `[start, end)`.
    private static func wholePages(from start: UInt, to end: UInt) -> (start: UInt, count: Int) {
        let size = UInt(getpagesize())
        let first = (start + size - 1) / size * size
        let last = end / size * size
        return (first, last > first ? Int((last - first) / size) : 0)
    }

    /// How many of `pages` are resident (`mincore`); none when they are no longer mapped.
    private static func residentPages(_ pages: (start: UInt, count: Int)) -> Int {
        guard pages.count > 0, let address = UnsafeMutableRawPointer(bitPattern: pages.start) else { return 0 }
        var vector = [UInt8](repeating: 0, count: pages.count)
        guard mincore(address, pages.count * Int(getpagesize()), &vector) == 0 else { return 0 }
        return vector.filter { $0 & 1 == 1 }.count
    }
}
