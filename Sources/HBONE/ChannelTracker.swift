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
                _ = self?.state.withLockedValue { $0.channels.removeValue(forKey: id) }
            }
        }
        return added
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
}
