#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes log lines to a descriptor from a thread of its own, so that the threads that log
/// never wait for the output: a proxy logs a line per connection from its event loops, and a
/// reader that stops reading (a full pipe to the container runtime, a suspended terminal, a
/// full disk) would otherwise stop every connection of those loops with it.
///
/// Lines are queued up to ``capacity`` bytes; beyond that a line is dropped and counted
/// (``droppedLines``), and once the output moves again the writer says how many were lost,
/// as Istio's ztunnel does with its non-blocking log appender. Lines queued together go out
/// in one `write(2)`; after a batch the writer lets lines gather for 10 ms (waking once per
/// line cost a proxy more CPU per connection than writing on the event loop did). While a
/// batch is written, up to ``capacity`` more bytes may queue, so at most twice the capacity
/// is held.
///
/// ``standardError`` is flushed when the process exits (bounded: a blocked output cannot
/// hold the exit); call ``flush(within:)`` before exiting another way.
public final class LogWriter: @unchecked Sendable {
    /// The process's standard error; started on first use, flushed at exit.
    public static let standardError: LogWriter = {
        let writer = LogWriter(descriptor: 2)
        atexit { _ = LogWriter.standardError.flush(within: .seconds(2)) }
        return writer
    }()

    /// The bytes that may wait to be written before lines are dropped.
    public let capacity: Int
    private let descriptor: CInt
    /// Guards everything below; the writer thread and ``flush(within:)`` wait on it.
    private let condition = NSCondition()
    private var lines: [String] = []
    private var queuedBytes = 0
    /// Lines dropped since the writer last reported drops.
    private var unreported = 0
    private var dropped = 0
    /// The writer waits for lines (nothing queued, nothing being written).
    private var idle = false
    /// How long the writer lets lines gather after a batch, in microseconds: under a steady
    /// stream it wakes at most about a hundred times a second, not once per line.
    private static let linger: useconds_t = 10_000

    /// A writer to `descriptor` (not closed by the writer), with its thread started.
    public init(descriptor: CInt, capacity: Int = 4 << 20) {
        self.descriptor = descriptor
        self.capacity = capacity
        let thread = Thread { [self] in run() }
        thread.name = "log-writer"
        thread.start()
    }

    /// Lines dropped so far because more than ``capacity`` bytes were waiting.
    public var droppedLines: Int {
        condition.lock()
        defer { condition.unlock() }
        return dropped
    }

    /// Queues `line` (its newline included) without waiting for the output.
    public func write(_ line: String) {
        let size = line.utf8.count
        condition.lock()
        defer { condition.unlock() }
        guard queuedBytes + size <= capacity else {
            unreported += 1
            dropped += 1
            return
        }
        lines.append(line)
        queuedBytes += size
        // Only an idle writer needs waking; a busy one takes this line with its next batch.
        if idle { condition.broadcast() }
    }

    /// Waits until every queued line is written, or `bound` passed (the output does not move);
    /// true when everything was written.
    @discardableResult
    public func flush(within bound: Duration) -> Bool {
        let seconds = Double(bound.components.seconds) + Double(bound.components.attoseconds) / 1e18
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while !(idle && lines.isEmpty && unreported == 0) {
            guard condition.wait(until: deadline) else { return idle && lines.isEmpty && unreported == 0 }
        }
        return true
    }

    private func run() {
        while true {
            condition.lock()
            while lines.isEmpty && unreported == 0 {
                idle = true
                condition.broadcast()  // for flush(within:)
                condition.wait()
            }
            idle = false
            let batch = lines, lost = unreported
            lines = []
            queuedBytes = 0
            unreported = 0
            condition.unlock()

            var text = String()
            if lost > 0 {
                text += "\(LineLogHandler.timestamp()) warning log: dropped=\(lost) [MeshMonitoring] log lines dropped: "
                text += "more than \(capacity) bytes waited for the output (it was not read fast enough)\n"
            }
            for line in batch { text += line }
            writeAll(text, to: descriptor)
            // More lines are likely to follow (an access log under load): let them gather instead of
            // being woken for each one, which cost a proxy more than the write(2) it saves.
            usleep(Self.linger)
        }
    }
}

/// Writes all of `text` to `descriptor`, retrying on EINTR and short writes; gives up on any other error.
func writeAll(_ text: String, to descriptor: CInt) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0, errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}
