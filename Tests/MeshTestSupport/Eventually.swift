import Foundation

/// Polls `condition` every 10 ms until it holds; `bound` (seconds) only guards
/// against hangs and is never a timing assertion.
public func eventually(bound: TimeInterval = 30, _ condition: @Sendable () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(bound)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}
