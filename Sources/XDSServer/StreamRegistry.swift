import Foundation
import NIOConcurrencyHelpers

/// The open ADS streams of a server, so that shutdown can end them: gRPC's
/// graceful shutdown waits for open RPCs, and ADS streams never end on their own.
final class StreamRegistry: Sendable {
    private struct State {
        var closers: [UUID: @Sendable () -> Void] = [:]
        var shuttingDown = false
    }

    private let state = NIOLockedValueBox(State())

    /// Registers a stream's closer; returns nil (and the caller ends at once) during shutdown.
    func register(_ close: @escaping @Sendable () -> Void) -> UUID? {
        state.withLockedValue { state in
            guard !state.shuttingDown else { return nil }
            let id = UUID()
            state.closers[id] = close
            return id
        }
    }

    func unregister(_ id: UUID) {
        _ = state.withLockedValue { $0.closers.removeValue(forKey: id) }
    }

    /// Ends every open stream and refuses new ones.
    func closeAll() {
        let closers = state.withLockedValue { state in
            state.shuttingDown = true
            defer { state.closers = [:] }
            return Array(state.closers.values)
        }
        for close in closers { close() }
    }
}
