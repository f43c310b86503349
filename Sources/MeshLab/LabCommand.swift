import Foundation

/// Runs the host tools the lab drives (`ip`, `iptables-restore`, `sysctl`),
/// waiting for them and turning a non-zero exit into a ``LabError`` with the
/// command's own stderr.
public enum LabCommand {
    /// Runs `argv` (looked up on PATH), feeding `input` to its stdin; returns stdout.
    @discardableResult
    public static func run(_ argv: [String], input: String? = nil) throws(LabError) -> String {
        let result = try status(argv, input: input)
        guard result.status == 0 else { throw .commandFailed(command: argv.joined(separator: " "), status: result.status, output: result.stderr) }
        return result.stdout
    }

    /// Runs `argv` and returns its exit status and output, whatever the status.
    public static func status(_ argv: [String], input: String? = nil) throws(LabError) -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        let stdout = Pipe()
        let stderr = Pipe()
        let stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        do {
            try process.run()
        } catch {
            throw .missingTool(argv.first ?? "?")
        }
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        // Read both pipes to the end before waiting, so a chatty command cannot block on a full pipe.
        let errors = LockedData()
        let readErrors = DispatchSemaphore(value: 0)
        Thread {
            errors.set(stderr.fileHandleForReading.readDataToEndOfFile())
            readErrors.signal()
        }.start()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        readErrors.wait()
        if process.terminationReason == .exit, process.terminationStatus == 127 { throw .missingTool(argv.first ?? "?") }
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: errors.value, as: UTF8.self))
    }

    /// Whether `tool` is on PATH.
    public static func exists(_ tool: String) -> Bool {
        (try? status(["sh", "-c", "command -v \(tool)"]).status) == 0
    }
}

/// Data handed from a reader thread.
private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?

    func set(_ value: Data) { lock.withLock { data = value } }
    var value: Data { lock.withLock { data ?? Data() } }
}
