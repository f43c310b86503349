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
}
