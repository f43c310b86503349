/// Runs a server's `run()` in the background for the duration of `body`, then
/// stops it with its graceful `shutdown()` and waits for `run()` to return.
///
/// The serving task is not cancelled: cancelling a NIO async server while it
/// has accepted a connection it has not handed out yet traps in NIO
/// ("Deinited NIOAsyncWriter without calling finish()", apple/swift-nio#2637).
/// Only if `run()` has not returned 60 s after `shutdown()` (a hang, which is a
/// bug of its own) is the task cancelled.
public func withBackground<T: Sendable>(
    run: @escaping @Sendable () async throws -> Void,
    shutdown: @escaping @Sendable () -> Void,
    _ body: @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await run() }
        let outcome: Result<T, any Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        shutdown()
        group.addTask {
            try await Task.sleep(for: .seconds(60))
            throw BackgroundServerHang()
        }
        do {
            try await group.next()
        } catch is BackgroundServerHang {
            group.cancelAll()
            throw BackgroundServerHang()
        } catch {
            // run() failed after shutdown; the body's outcome is what the test is about.
        }
        group.cancelAll()
        return try outcome.get()
    }
}

/// A server's `run()` did not return within 60 s of its `shutdown()`.
public struct BackgroundServerHang: Error, CustomStringConvertible {
    public var description: String { "the server's run() did not return within 60 s of shutdown()" }
}
