import ArgumentParser
import Foundation
import Logging
import MeshMonitoring
import NIOConcurrencyHelpers

/// Sends every log line at `level` or above (a swift-log level name; `info` when unknown) to standard error.
/// The returned control changes the level of every logger at run time (ztunnel's `/logging?level=`).
@discardableResult
public func bootstrapLogging(_ level: String) -> LogLevelControl {
    let control = LogLevelControl(Logger.Level(rawValue: level) ?? .info)
    LoggingSystem.bootstrap { label in
        LevelControlledLogHandler(inner: LineLogHandler.standardError(label: label), control: control)
    }
    return control
}

/// The process's log level, shared by every logger made after ``bootstrapLogging(_:)``.
public final class LogLevelControl: Sendable {
    private let level: NIOLockedValueBox<Logger.Level>

    init(_ level: Logger.Level) { self.level = NIOLockedValueBox(level) }

    public var current: Logger.Level {
        get { level.withLockedValue { $0 } }
        set { level.withLockedValue { $0 = newValue } }
    }
}

/// A handler whose level is the process's (``LogLevelControl``).
struct LevelControlledLogHandler: LogHandler {
    var inner: LineLogHandler
    let control: LogLevelControl

    var logLevel: Logger.Level {
        get { control.current }
        set { control.current = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        inner.log(event: event)
    }
}

/// Unblocks SIGTERM and SIGINT for this process. A signal mask is inherited
/// across exec, and a parent that blocked them (Swift's own threads do) would
/// otherwise leave a daemon that cannot be asked to shut down gracefully.
/// Call first thing, before any thread starts.
public func unblockShutdownSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    sigprocmask(SIG_UNBLOCK, &set, nil)
}

/// "host:port" flags.
public enum HostPort {
    public static func parse(_ value: String) throws -> (String, Int) {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("\"\(value)\" is not host:port")
        }
        return (String(value[..<colon]), port)
    }

    /// A comma-separated list of host:port (control-plane replicas), in order; at least one.
    public static func parseList(_ value: String) throws -> [(String, Int)] {
        let items = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw ValidationError("\"\(value)\" names no host:port") }
        return try items.map(parse)
    }
}

/// Suspends until SIGINT or SIGTERM.
public func waitForTermination() async {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let once = OnceFlag()
        let sources = [SIGINT, SIGTERM].map { DispatchSource.makeSignalSource(signal: $0, queue: .global()) }
        for source in sources {
            source.setEventHandler {
                if once.claim() { continuation.resume() }
            }
            source.resume()
        }
        SignalSources.keep(sources)
    }
}

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if done { return false }
        done = true
        return true
    }
}

enum SignalSources {
    nonisolated(unsafe) static var kept: [any DispatchSourceSignal] = []
    static func keep(_ sources: [any DispatchSourceSignal]) { kept = sources }
}


/// Durations on the command line, as Istio writes them (`DEFAULT_WORKLOAD_CERT_TTL=24h`):
/// a number with `s`, `m` or `h`, or plain seconds.
public enum DurationText {
    public static func seconds(_ value: String) throws -> TimeInterval {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600]
        var number = Substring(value)
        var unit: TimeInterval = 1
        if let last = value.last, let scale = units[last] {
            number = number.dropLast()
            unit = scale
        }
        guard let amount = TimeInterval(number), amount > 0, amount.isFinite else {
            throw ValidationError("\"\(value)\" is not a duration (e.g. 90s, 30m, 24h)")
        }
        return amount * unit
    }
}
