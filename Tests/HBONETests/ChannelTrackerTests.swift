@testable import HBONE
import NIOCore
import NIOEmbedded
import Testing

@Suite("ChannelTracker")
struct ChannelTrackerTests {
    @Test("closed channels leave the tracker; after a burst its table shrinks to what is left")
    func shrinksAfterBurst() {
        let tracker = ChannelTracker()
        let channels = (0..<5000).map { _ in EmbeddedChannel() }
        for channel in channels { #expect(tracker.add(channel)) }
        #expect(tracker.count == 5000)
        for channel in channels.dropFirst(10) {
            channel.close(promise: nil)
            channel.embeddedEventLoop.run()
        }
        #expect(tracker.count == 10)
        #expect(tracker.capacity < 1024, "the table sized for 5,000 was given back")
        let open = tracker.close()
        #expect(Set(open.map { ObjectIdentifier($0) }) == Set(channels.prefix(10).map { ObjectIdentifier($0) }))
        let late = EmbeddedChannel()
        #expect(!tracker.add(late), "no channel is admitted after close")
        // Open channels hold their pipelines: close them so that nothing outlives the test.
        for channel in channels.prefix(10) + [late] {
            channel.close(promise: nil)
            channel.embeddedEventLoop.run()
        }
    }

    @Test("the shrink keeps every entry and leaves small tables alone")
    func shrinkKeepsEntries() {
        var large = Dictionary(uniqueKeysWithValues: (0..<10_000).map { ($0, "v\($0)") })
        for key in 100..<10_000 { large.removeValue(forKey: key) }
        let before = large.capacity
        ChannelTracker.shrinkIfMostlyEmpty(&large)
        #expect(large.capacity < before)
        #expect(large == Dictionary(uniqueKeysWithValues: (0..<100).map { ($0, "v\($0)") }))

        var small = Dictionary(uniqueKeysWithValues: (0..<600).map { ($0, $0) })
        for key in 10..<600 { small.removeValue(forKey: key) }
        let smallCapacity = small.capacity
        ChannelTracker.shrinkIfMostlyEmpty(&small)
        #expect(small.capacity == smallCapacity)
    }
}
