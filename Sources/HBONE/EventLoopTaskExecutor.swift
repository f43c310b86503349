import NIOCore

/// A task executor that runs a task's jobs on one NIO event loop.
///
/// A connection's set-up written with `async`/`await` (accept, look up, open a
/// tunnel, splice) waits on futures of its channel's event loop. In a plain
/// `Task` every such wait is two thread switches: the future completes on the
/// loop and wakes a thread of the global concurrency pool, which then asks the
/// loop for the next step. With this executor as the task's preference the task
/// runs on the loop itself, so a future of that loop resumes it with an in-loop
/// enqueue and no wake-up. Actors without their own executor that the task calls
/// run there too (SE-0417), still one caller at a time.
///
/// Code in such a task runs on the event loop: it must not block (no
/// `EventLoopFuture.wait()`, no blocking system call); hand blocking work to a
/// thread pool as with any code on a loop.
///
/// ```swift
/// channel.eventLoop.runTask { await handle(channel) }
/// ```
public final class EventLoopTaskExecutor: TaskExecutor {
    /// The loop the jobs run on.
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

extension EventLoop {
    /// Starts `body` in a task that runs on this event loop (``EventLoopTaskExecutor``).
    @discardableResult
    public func runTask<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) -> Task<Result, any Error> {
        Task(executorPreference: EventLoopTaskExecutor(self), operation: body)
    }

    /// Runs `body` in a task on this event loop and returns its result as a future of the loop.
    public func makeFutureWithLoopTask<Result: Sendable>(_ body: @escaping @Sendable () async throws -> Result) -> EventLoopFuture<Result> {
        let promise = makePromise(of: Result.self)
        runTask { () async -> Void in
            do {
                promise.succeed(try await body())
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }
}
