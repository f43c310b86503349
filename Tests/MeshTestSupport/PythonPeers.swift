import Foundation
import NIOConcurrencyHelpers

/// Locates the interop virtualenv's Python and runs peers from Tests/Interop.
public enum PythonPeers {
    public static var isCI: Bool { Interop.isCI }

    public static var python: String? { Interop.python }

    /// True when the venv has the modules a peer imports.
    public static func has(_ modules: [String]) -> Bool {
        guard let python else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", "import " + modules.joined(separator: ", ")]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// Enabled unless the peer is missing; with CI=true a missing peer runs (and fails) instead of skipping.
    public static func available(_ modules: [String]) -> Bool { isCI || has(modules) }

    public static func script(_ name: String) -> String { Interop.script(name) }
}

/// A Python peer whose stdout lines the test reads and whose stdin it writes.
public final class LinePeer: Sendable {
    private let process: Process
    private let input: Pipe
    private final class Output: Sendable {
        let log = NIOLockedValueBox("")
        let state = NIOLockedValueBox<(lines: [String], pending: String, consumed: Int, closed: Bool)>(([], "", 0, false))
    }
    private let output = Output()

    public init(script: String, arguments: [String]) throws {
        guard let python = PythonPeers.python else { throw PeerError.missingPython }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [PythonPeers.script(script)] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        environment.removeValue(forKey: "GRPC_XDS_BOOTSTRAP")
        process.environment = environment
        let pipe = Pipe()
        let input = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = input
        self.process = process
        self.input = input
        let shared = self.output
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                shared.state.withLockedValue { $0.closed = true }
                return
            }
            let text = String(decoding: data, as: UTF8.self)
            shared.log.withLockedValue { $0 += text }
            shared.state.withLockedValue { state in
                state.pending += text
                var parts = state.pending.components(separatedBy: "\n")
                state.pending = parts.removeLast()
                state.lines += parts
            }
        }
        try process.run()
    }

    /// All output so far (for failure messages).
    public var transcript: String { output.log.withLockedValue { $0 } }

    public func send(_ line: String) {
        try? input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// The next line that starts with `prefix` (other lines, e.g. logs, are skipped).
    /// The bound is a hang guard for a broken peer, not a timing assertion.
    public func line(startingWith prefix: String, guardSeconds: Double = 60) async throws -> String {
        let deadline = Date().addingTimeInterval(guardSeconds)
        while Date() < deadline {
            let (found, closed): (String?, Bool) = output.state.withLockedValue { state in
                while state.consumed < state.lines.count {
                    let line = state.lines[state.consumed]
                    state.consumed += 1
                    if line.hasPrefix(prefix) { return (line, false) }
                }
                return (nil, state.closed)
            }
            if let found { return found }
            if closed { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw PeerError.noLine(prefix: prefix, transcript: transcript)
    }

    /// Ends the peer. SIGKILL, because processes spawned from Swift's threads inherit a
    /// signal mask that blocks SIGTERM, and a peer that ignores it would hang the test.
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    public enum PeerError: Error, CustomStringConvertible {
        case missingPython
        case noLine(prefix: String, transcript: String)

        public var description: String {
            switch self {
            case .missingPython: "the interop venv is missing; run scripts/test (it creates .venv with Tests/Interop/requirements.txt)"
            case .noLine(let prefix, let transcript): "the peer printed no line starting with '\(prefix)'; its output:\n\(transcript)"
            }
        }
    }
}
