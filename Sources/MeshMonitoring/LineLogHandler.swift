#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOConcurrencyHelpers

/// A swift-log handler that writes each event as one line, in the format of swift-log's
/// `StreamLogHandler` (`2026-12-07T15:35:37+0000 info ztunnel: key=value … [source] message`,
/// metadata sorted by key), handed whole to an output (``LogWriter`` for standard error).
///
/// Made for a proxy's access log, one line per connection, where `StreamLogHandler`'s way
/// showed in profiles: it calls `localtime(3)`, which looks at `/etc/localtime` again for
/// every line (a `newfstatat` per connection), and merges the logger's metadata into a new
/// dictionary even when the logger has none. Here the timestamp is formatted once a second
/// (with `localtime_r`) and shared by all threads, and metadata is merged only when there is
/// something to merge.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    public var metadata = Logger.Metadata()

    private let label: String
    private let output: @Sendable (String) -> Void

    /// A handler writing to `output` (one call per line, the newline included).
    public init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider,
                output: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.output = output
    }

    /// A handler writing to the process's standard error through ``LogWriter/standardError``:
    /// the logging thread never waits for the output.
    public static func standardError(label: String) -> LineLogHandler {
        let writer = LogWriter.standardError
        return LineLogHandler(label: label) { line in writer.write(line) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = String()
        line.reserveCapacity(256)
        line += Self.timestamp()
        line += " "
        line += event.level.description
        if !label.isEmpty { line += " " }
        line += label
        line += ":"
        let all = merged(event)
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            line += " "
            line += key
            line += "="
            line += value.description
        }
        line += " ["
        line += event.source
        line += "] "
        line += event.message.description
        line += "\n"
        output(line)
    }

    /// The logger's metadata, the provider's and the event's, later ones winning (as `StreamLogHandler` merges them).
    private func merged(_ event: LogEvent) -> Logger.Metadata {
        let provided = metadataProvider?.get() ?? [:]
        var result: Logger.Metadata
        if metadata.isEmpty, provided.isEmpty {
            result = event.metadata ?? [:]
        } else {
            result = metadata
            if !provided.isEmpty { result.merge(provided) { $1 } }
            if let explicit = event.metadata { result.merge(explicit) { $1 } }
        }
        if let error = event.error {
            result["error.message"] = "\(error)"
            result["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        return result
    }

    // MARK: Timestamp

    private static let lastTimestamp = NIOLockedValueBox<(second: time_t, text: String)>((-1, ""))

    /// The local time to the second, `%Y-%m-%dT%H:%M:%S%z`, formatted at most once a second.
    static func timestamp() -> String {
        var now = time(nil)
        if let cached = lastTimestamp.withLockedValue({ $0.second == now ? $0.text : nil }) { return cached }
        var local = tm()
        guard localtime_r(&now, &local) != nil else { return "<unknown>" }
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &local)
        let text = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        lastTimestamp.withLockedValue { $0 = (now, text) }
        return text
    }
}
