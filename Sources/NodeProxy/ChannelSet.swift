import NIOCore
import Synchronization

/// Open channels of one owner (a captured pod's accepted connections), so that
/// they can all be closed when the owner goes.
final class ChannelSet: Sendable {
    private let channels = Mutex<(open: [ObjectIdentifier: any Channel], closed: Bool)>(([:], false))

    /// Adds `channel`; false (and the caller closes it) once the set was closed.
    func add(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let added = channels.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.open[id] = channel
            return true
        }
        if added {
            channel.closeFuture.whenComplete { [weak self] _ in
                _ = self?.channels.withLock { $0.open.removeValue(forKey: id) }
            }
        }
        return added
    }

    /// Closes every channel and admits no more.
    func closeAll() async {
        let open = channels.withLock { state in
            state.closed = true
            return Array(state.open.values)
        }
        for channel in open { try? await channel.close() }
    }

    var count: Int { channels.withLock { $0.open.count } }
}
