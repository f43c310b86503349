import Foundation
import Logging
import MeshMonitoring
import NIOConcurrencyHelpers
import Testing

/// `LineLogHandler` against swift-log's own `StreamLogHandler` (the format it keeps).
@Suite struct LineLogHandlerTests {
    /// Collects what a handler writes.
    final class Lines: TextOutputStream, @unchecked Sendable {
        private let lock = NIOLock()
        private var text = ""
        func write(_ string: String) { lock.withLock { text += string } }
        var all: String { lock.withLock { text } }
    }

    struct Refused: Error {}

    /// Logs `body`'s events through both handlers; returns each one's output with the timestamps cut off.
    private func both(label: String, metadata: Logger.Metadata = [:], provider: Logger.MetadataProvider? = nil,
                      _ body: (inout Logger) -> Void) -> (line: String, stream: String, timestamps: [Substring]) {
        let lineOutput = Lines()
        let streamOutput = Lines()
        var line = Logger(label: label) { label in LineLogHandler(label: label, metadataProvider: provider) { lineOutput.write($0) } }
        var stream = Logger(label: label) { label in StreamLogHandler(label: label, stream: streamOutput, metadataProvider: provider) }
        for (key, value) in metadata {
            line[metadataKey: key] = value
            stream[metadataKey: key] = value
        }
        body(&line)
        body(&stream)
        func cut(_ text: String) -> [Substring] { text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.drop { $0 != " " } } }
        let timestamps = lineOutput.all.split(separator: "\n").map { $0.prefix { $0 != " " } }
        return (cut(lineOutput.all).joined(separator: "\n"), cut(streamOutput.all).joined(separator: "\n"), timestamps)
    }

    @Test("lines as StreamLogHandler writes them: levels, label, metadata of the logger, the provider and the event, sorted; errors; nested values")
    func sameFormat() {
        let provider = Logger.MetadataProvider { ["trace": "abc", "shared": "provider"] }
        let cases: [(String, Logger.Metadata, Logger.MetadataProvider?)] = [
            ("ztunnel", [:], nil),
            ("mesh.hbone", ["node": "node-a", "shared": "logger"], nil),
            ("", [:], provider),
            ("with-provider", ["shared": "logger"], provider),
        ]
        for (label, metadata, provider) in cases {
            let result = both(label: label, metadata: metadata, provider: provider) { logger in
                logger.logLevel = .trace
                logger.info("connection complete", metadata: [
                    "src.addr": "10.244.1.2:40000", "dst.identity": "spiffe://cluster.local/ns/a/sa/b", "bytes": "1024", "shared": "event",
                ])
                logger.warning("no metadata here")
                logger.debug("nested", metadata: ["list": ["a", "b"], "map": ["k": "v"], "number": .stringConvertible(42)])
                logger.error("failed", error: Refused())
                logger.trace("")
            }
            #expect(result.line == result.stream, "label \(label)")
            #expect(result.line.contains("[MeshMonitoringTests]"))
        }
    }

    @Test("the timestamp is the local time to the second, as strftime gives it")
    func timestamp() throws {
        let before = Date()
        let result = both(label: "t") { $0.info("x") }
        let after = Date()
        let stamp = try #require(result.timestamps.first)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ssZ"
        let parsed = try #require(formatter.date(from: String(stamp)), "\(stamp)")
        #expect(parsed.timeIntervalSince1970 >= before.timeIntervalSince1970.rounded(.down))
        #expect(parsed.timeIntervalSince1970 <= after.timeIntervalSince1970)
    }

    @Test("lines from many threads at once are whole, one per event")
    func concurrent() async {
        let output = Lines()
        let logger = Logger(label: "many") { LineLogHandler(label: $0) { output.write($0) } }
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask { for n in 0..<200 { logger.info("line", metadata: ["task": "\(task)", "n": "\(n)"]) } }
            }
        }
        let lines = output.all.split(separator: "\n")
        #expect(lines.count == 1_600)
        #expect(lines.allSatisfy { $0.hasSuffix("[MeshMonitoringTests] line") && $0.contains(" info many: n=") })
    }
}
