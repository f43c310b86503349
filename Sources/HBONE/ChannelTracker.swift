import NIOCore
import NIOConcurrencyHelpers

/// The open channels of an owner (a server's connections, a captured pod's),
/// so that shutdown can drain or close them all.
public final class ChannelTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var closed = false
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Adds a channel; returns false (and the caller closes it) once shutdown began.
    public func add(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let added = state.withLockedValue { state -> Bool in
            guard !state.closed else { return false }
            state.channels[id] = channel
            return true
        }
        if added {
            channel.closeFuture.whenComplete { [weak self] _ in
                self?.state.withLockedValue { state in
                    state.channels.removeValue(forKey: id)
                    Self.shrinkIfMostlyEmpty(&state.channels)
                }
            }
        }
        return added
    }

    /// A dictionary keeps the buffer of its largest size: after a burst (10,000 connections of one
    /// pod) that is most of a megabyte held for good. Once it is seven-eighths empty it is copied
    /// into one sized to what is left (each copy at most halves the next threshold: O(1) amortized).
    static func shrinkIfMostlyEmpty<Key: Hashable, Value>(_ dictionary: inout [Key: Value]) {
        guard dictionary.capacity >= 1024, dictionary.count * 8 < dictionary.capacity else { return }
        var smaller = [Key: Value](minimumCapacity: dictionary.count)
        for (key, value) in dictionary { smaller[key] = value }
        dictionary = smaller
    }

    /// Stops admitting channels and returns the open ones.
    public func close() -> [any Channel] {
        state.withLockedValue { state in
            state.closed = true
            return Array(state.channels.values)
        }
    }

    /// Stops admitting channels and closes the open ones.
    public func closeAll() async {
        for channel in close() { try? await channel.close() }
    }

    /// The open channels.
    public var count: Int { state.withLockedValue { $0.channels.count } }

    /// How many channels the table has room for without growing.
    var capacity: Int { state.withLockedValue { $0.channels.capacity } }
}
