import Foundation
import NIOConcurrencyHelpers

/// Fired once by a server's `shutdown()`; long-lived streams wait on it so that
/// gRPC's graceful shutdown (which waits for open RPCs) can complete.
final class ShutdownLatch: Sendable {
    private struct State {
        var fired = false
        var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = NIOLockedValueBox(State())

    /// Returns once ``fire()`` has been called (at once if it has been already).
    func wait() async {
        let id = UUID()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLockedValue { state -> Bool in
                if state.fired { return true }
                state.waiters[id] = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Releases every waiter, now and later.
    func fire() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.fired = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Runs `stream` until it ends or the latch fires, whichever comes first.
    func run(_ stream: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await stream() }
            group.addTask { await self.wait() }
            try await group.next()
            group.cancelAll()
        }
    }
}
