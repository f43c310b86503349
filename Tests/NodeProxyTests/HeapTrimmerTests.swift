import Glibc
import NIOPosix
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

    @Test("a trim on a group trims each loop's arena top there, which malloc_trim leaves")
    func trimOnGroup() async throws {
        // Fixed thresholds (1 MiB trim threshold), whatever other tests freed before.
        #expect(HeapTrimmer.fixThresholds())
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        // A loop's thread fills and frees 8 MiB of small blocks; a malloc_trim consolidates them into its
        // arena's top, which it gives back in no arena but the main one. On that thread nothing may be
        // freed next to the top meanwhile: glibc trims a thread arena's top on any free that merges into
        // it, so the residency vector is allocated before the blocks.
        let loop = group.next()
        let (pages, afterMallocTrim) = try await loop.submit {
            var vector = [UInt8](repeating: 0, count: 4096)
            // glibc's per-thread cache (on in tests; the lab turns it off for ztunnel) keeps the first 7
            // blocks of a size freed, and a cached block next to the top would keep the others from
            // merging into it: 7 blocks freed first fill the cache.
            let cached = (0..<7).map { _ in malloc(64)! }
            // Linked through their first word (no array, whose free would trim the top). The pages
            // measured are those of the longest run of blocks carved one after another (a block of 64
            // bytes is a chunk of 80, so the next starts 16 bytes after the last one ends).
            var head: UnsafeMutableRawPointer?
            var run = (start: UInt(0), end: UInt(0)), longest = run
            for _ in 0..<100_000 {
                let block = malloc(64)!
                memset(block, 1, 64)
                block.storeBytes(of: head, as: UnsafeMutableRawPointer?.self)
                head = block
                let address = UInt(bitPattern: block)
                run = address == run.end + 16 ? (run.start, address + 64) : (address, address + 64)
                if run.end - run.start > longest.end - longest.start { longest = run }
            }
            for block in cached { free(block) }
            while let block = head {
                head = block.load(as: UnsafeMutableRawPointer?.self)
                free(block)
            }
            HeapTrimmer.trim()
            let pages = Self.wholePages(from: longest.start, to: longest.end)
            return (pages, Self.residentPages(pages, into: &vector))
        }.get()
        let trimmed = await HeapTrimmer.trim(on: group)
        // In an arena of its own the blocks were carved from the top and malloc_trim left them: the
        // group's trim must give them back. In one shared with other threads (glibc allows eight per core,
        // and a busy test process reaches that) they lay in a free block inside, which malloc_trim gave
        // back, and other threads may have taken those pages since: there is nothing to check then.
        if let afterMallocTrim, afterMallocTrim > pages.count / 2 {
            var vector = [UInt8](repeating: 0, count: 4096)
            let resident = try #require(Self.residentPages(pages, into: &vector))
            #expect(pages.count > 1_000)
            #expect(resident < pages.count / 10, "\(resident) of \(pages.count) pages still resident; \(afterMallocTrim) after malloc_trim alone; \(trimmed)")
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

    /// How many of `pages` (at most 4,096) are resident (`mincore`, into `vector`, allocated by the
    /// caller); nil when that cannot be read.
    private static func residentPages(_ pages: (start: UInt, count: Int), into vector: inout [UInt8]) -> Int? {
        guard pages.count > 0, pages.count <= vector.count, let address = UnsafeMutableRawPointer(bitPattern: pages.start) else { return nil }
        return vector.withUnsafeMutableBufferPointer { buffer -> Int? in
            guard mincore(address, pages.count * Int(getpagesize()), buffer.baseAddress) == 0 else { return nil }
            return buffer.prefix(pages.count).reduce(0) { $0 + Int($1 & 1) }
        }
    }
}
