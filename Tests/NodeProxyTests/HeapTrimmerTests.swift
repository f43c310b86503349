import Glibc
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

    @Test("a trim gives back the freed top of a thread's arena (8 MiB freed after a 16 MiB block was)")
    func trimReturnsFreedTop() async throws {
        // On a thread of its own, which gets an arena of its own.
        let resident = try await Interop.onThread {
            let large = try #require(malloc(16 << 20))
            memset(large, 1, 16 << 20)
            free(large)
            // 8 MiB from this thread's arena, touched, then freed from the top down: they become the arena's top.
            let blocks = try (0..<256).map { _ in
                let block = try #require(malloc(32 << 10))
                memset(block, 1, 32 << 10)
                return block
            }
            let pages = blocks.map(Self.wholePages)
            for block in blocks.reversed() { free(block) }
            HeapTrimmer.trim()
            return pages.reduce(0) { $0 + Self.residentPages($1) }
        }
        let total = 256 * (32 << 10) / Int(getpagesize())
        #expect(resident < total / 10, "\(resident) of about \(total) pages still resident")
    }

    /// The pages wholly inside a 32 KiB block.
    private static func wholePages(_ block: UnsafeMutableRawPointer) -> (start: UInt, count: Int) {
        let size = UInt(getpagesize())
        let start = (UInt(bitPattern: block) + size - 1) / size * size
        let end = (UInt(bitPattern: block) + UInt(32 << 10)) / size * size
        return (start, end > start ? Int((end - start) / size) : 0)
    }

    /// How many of `pages` are resident (`mincore`); none when they are no longer mapped.
    private static func residentPages(_ pages: (start: UInt, count: Int)) -> Int {
        guard pages.count > 0, let address = UnsafeMutableRawPointer(bitPattern: pages.start) else { return 0 }
        var vector = [UInt8](repeating: 0, count: pages.count)
        guard mincore(address, pages.count * Int(getpagesize()), &vector) == 0 else { return 0 }
        return vector.filter { $0 & 1 == 1 }.count
    }
}
