import Foundation
import NIOConcurrencyHelpers

/// Locates the independent peers (openssl, the interop Python venv) and runs them.
public enum Interop {
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    public static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    public static var python: String? {
        let candidate = ProcessInfo.processInfo.environment["MESH_INTEROP_PYTHON"] ?? packageRoot + "/.venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }

    public static var openssl: String? { which("openssl") }

    public static func which(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    public static func script(_ name: String) -> String { packageRoot + "/Tests/Interop/" + name }

    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var combined: String { stdout + stderr }
    }

    /// Runs a command to completion on its own thread, so that waiting never blocks
    /// Swift's cooperative pool (which the servers under test need).
    public static func run(_ executable: String, _ arguments: [String], stdin: String? = nil) async throws -> Output {
        try await onThread { try runBlocking(executable, arguments, stdin: stdin) }
    }

    /// Runs blocking work (a process, a blocking socket call, host tools) on a thread of its
    /// own, so that waiting never blocks Swift's cooperative pool.
    public static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    public static func runBlocking(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        let stderrData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus,
            stdout: String(decoding: stdoutData, as: UTF8.self),
            stderr: String(decoding: stderrData, as: UTF8.self)
        )
    }
}

/// A long-running peer process whose output the test watches for expected text.
public final class PeerProcess: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()
    private final class Buffer: Sendable {
        let text = NIOLockedValueBox("")
    }
    private let buffer = Buffer()
    private let output = Pipe()

    public init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        process.standardInput = input
        resumeOutput()
        try process.run()
    }

    /// Stops reading the peer's output: once the pipe's buffer is full, the peer's writes
    /// to standard output and error block (or fail, if non-blocking), as with a stalled log
    /// collector.
    public func pauseOutput() { output.fileHandleForReading.readabilityHandler = nil }

    /// Reads the peer's output again (the initial state).
    public func resumeOutput() {
        output.fileHandleForReading.readabilityHandler = { [buffer] handle in
            let data = handle.availableData
            if !data.isEmpty { buffer.text.withLockedValue { $0 += String(decoding: data, as: UTF8.self) } }
        }
    }

    public var text: String { buffer.text.withLockedValue { $0 } }

    /// The process id while it runs.
    public var pid: Int32? { process.isRunning ? process.processIdentifier : nil }

    public func send(_ text: String) { input.fileHandleForWriting.write(Data(text.utf8)) }

    /// Waits until the output contains `needle` or the process exits; a generous bound
    /// (not a timing assertion) keeps a broken peer from hanging the suite.
    @discardableResult
    public func waitFor(_ needle: String, bound: TimeInterval = 30) async -> Bool {
        let deadline = Date().addingTimeInterval(bound)
        while Date() < deadline {
            if text.contains(needle) { return true }
            if !process.isRunning {
                try? await Task.sleep(nanoseconds: 50_000_000)
                return text.contains(needle)
            }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return false
    }

    /// The port of the first `KEY=HOST:PORT` in the output (a log line's metadata), so a
    /// peer can be started on port 0 and the port it bound read back: no port picked
    /// beforehand that another test could take in between.
    public func loggedPort(_ key: String) -> Int? {
        let output = text
        guard let range = output.range(of: " \(key)=") ?? output.range(of: "\t\(key)=") else { return nil }
        let value = output[range.upperBound...].prefix { !$0.isWhitespace }
        guard let colon = value.lastIndex(of: ":") else { return nil }
        return Int(value[value.index(after: colon)...])
    }

    public func waitForExit(bound: TimeInterval = 30) async -> Int32? {
        let deadline = Date().addingTimeInterval(bound)
        while process.isRunning && Date() < deadline { try? await Task.sleep(nanoseconds: 10_000_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Sends `signal` (e.g. SIGTERM) to the peer, if it still runs.
    public func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Ends the peer. SIGKILL, because processes spawned from Swift's threads inherit a
    /// signal mask that blocks SIGTERM, and a peer that ignores it would hang the test.
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
