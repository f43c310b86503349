import NIOCore
import Synchronization

/// The open connections of a server, so that shutdown can drain them all.
final class ConnectionTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var closed = false
    }

    private let state = Mutex(State())

    /// Adds a channel; returns false (and the caller closes it) once shutdown began.
    func add(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let added = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.channels[id] = channel
            return true
        }
        if added {
            channel.closeFuture.whenComplete { [weak self] _ in
                _ = self?.state.withLock { $0.channels.removeValue(forKey: id) }
            }
        }
        return added
    }

    /// Stops admitting channels and returns the open ones.
    func close() -> [any Channel] {
        state.withLock { state in
            state.closed = true
            return Array(state.channels.values)
        }
    }

    var count: Int { state.withLock { $0.channels.count } }
}
