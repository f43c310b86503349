import Foundation
import MeshMonitoring
import MeshTestSupport
import Synchronization
import Testing

/// `LogWriter` over a real pipe: the logging threads never wait for the reader.
@Suite struct LogWriterTests {
    /// Reads `pipe` until end of file, on a thread of its own.
    private func readToEnd(_ pipe: Pipe) async throws -> String {
        let handle = pipe.fileHandleForReading
        return try await Interop.onThread { String(decoding: handle.readDataToEndOfFile(), as: UTF8.self) }
    }

    /// Starts a thread writing `lines` numbered lines of about 100 bytes; the flag is set once all were handed over.
    private func startLogging(_ writer: LogWriter, prefix: String, lines: Int) -> Done {
        let done = Done()
        Thread {
            for index in 0..<lines {
                writer.write("\(prefix) \(index) " + String(repeating: "x", count: 90) + "\n")
            }
            done.flag.store(true, ordering: .releasing)
        }.start()
        return done
    }

    @Test("a reader that stops reading stops no logging thread: lines beyond the capacity are dropped and counted; once read again, the kept lines come whole and in order, and a line says how many were lost")
    func stalledReader() async throws {
        let pipe = Pipe()
        let writer = LogWriter(descriptor: pipe.fileHandleForWriting.fileDescriptor, capacity: 64 << 10)
        let total = 10_000
        // Nobody reads: the pipe fills (64 KiB), the writer's thread blocks in write(2), the queue fills.
        let logged = startLogging(writer, prefix: "line", lines: total)
        #expect(await eventually { logged.isDone }, "write(_:) returned for every line")
        let dropped = writer.droppedLines
        #expect(dropped > 0 && dropped < total, "\(dropped) dropped")
        #expect(!writer.flush(within: .milliseconds(200)), "nothing can be flushed while nobody reads")

        let reading = Task { try await readToEnd(pipe) }
        #expect(writer.flush(within: .seconds(30)))
        try pipe.fileHandleForWriting.close()
        let lines = try await reading.value.split(separator: "\n")
        let kept = lines.filter { $0.hasPrefix("line ") }
        let numbers = kept.compactMap { Int($0.split(separator: " ")[1]) }
        #expect(kept.count + dropped == total, "\(kept.count) kept, \(dropped) dropped")
        #expect(numbers == numbers.sorted() && Set(numbers).count == numbers.count)
        #expect(kept.allSatisfy { $0.hasSuffix(String(repeating: "x", count: 90)) }, "every kept line is whole")
        // One notice per batch written after drops (the writer may take a batch before it blocks): together, every drop.
        let notices = lines.filter { $0.contains("log lines dropped") }
        let reported = notices.compactMap { notice in notice.split(separator: " ").first { $0.hasPrefix("dropped=") }.flatMap { Int($0.dropFirst(8)) } }
        #expect(!notices.isEmpty && reported.count == notices.count && reported.reduce(0, +) == dropped, "\(notices)")
        #expect(notices.allSatisfy { $0.contains(" warning log: dropped=") })
    }

    @Test("lines from several threads all come out whole, each thread's in its order")
    func concurrentWriters() async throws {
        let pipe = Pipe()
        let writer = LogWriter(descriptor: pipe.fileHandleForWriting.fileDescriptor)
        let reading = Task { try await readToEnd(pipe) }
        let threads = 4, each = 2_000
        let logged = (0..<threads).map { startLogging(writer, prefix: "thread-\($0)", lines: each) }
        #expect(await eventually { logged.allSatisfy(\.isDone) })
        #expect(writer.flush(within: .seconds(30)))
        #expect(writer.droppedLines == 0)
        try pipe.fileHandleForWriting.close()
        let lines = try await reading.value.split(separator: "\n")
        #expect(lines.count == threads * each)
        for thread in 0..<threads {
            let numbers = lines.filter { $0.hasPrefix("thread-\(thread) ") }.compactMap { Int($0.split(separator: " ")[1]) }
            #expect(numbers == Array(0..<each), "thread \(thread)")
        }
    }
}

/// Set by a logging thread once it handed over all its lines.
private final class Done: Sendable {
    let flag = Atomic(false)
    var isDone: Bool { flag.load(ordering: .acquiring) }
}
