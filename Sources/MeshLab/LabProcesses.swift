import Foundation

/// Starts and stops the lab's long-running processes: each in a network
/// namespace (`ip netns exec`), in its own process group, with its output in
/// `logs/NAME.log` and its process id in `pids/NAME.pid`.
public struct LabProcesses: Sendable {
    public let layout: LabLayout

    public init(layout: LabLayout) { self.layout = layout }

    /// Starts `argv` in `netns` with exactly `environment` (plus PATH) as `name`.
    @discardableResult
    public func start(_ name: String, netns: String, argv: [String], environment: [String: String] = [:]) throws(LabError) -> Int32 {
        guard !argv.isEmpty else { throw .invalid("\(name) has no command (a container needs `command` or `args`)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        let variables = (["PATH": path, "HOME": "/root"].merging(environment) { _, given in given }).sorted { $0.key < $1.key }.map { "\($0)=\($1)" }
        process.arguments = ["ip", "netns", "exec", netns, "env", "-i"] + variables + argv
        _ = FileManager.default.createFile(atPath: layout.log(name), contents: nil)
        guard let log = FileHandle(forWritingAtPath: layout.log(name)) else { throw .invalid("cannot open \(layout.log(name))") }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw .invalid("cannot start \(name) (\(argv.joined(separator: " "))): \(error)")
        }
        try? log.close()
        let pid = process.processIdentifier
        try? "\(pid)\n".write(toFile: layout.pid(name), atomically: true, encoding: .utf8)
        return pid
    }

    /// The process id of `name`, if it is running.
    public func pid(_ name: String) -> Int32? {
        guard let text = try? String(contentsOfFile: layout.pid(name), encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0, !Self.isZombie(pid) else { return nil }
        return pid
    }

    /// An exited process its parent has not reaped yet (state `Z` in /proc/PID/stat).
    private static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    /// Stops `name` and its process group: SIGTERM, then SIGKILL after `grace`.
    public func stop(_ name: String, grace: Duration = .seconds(5)) {
        defer { try? FileManager.default.removeItem(atPath: layout.pid(name)) }
        guard let pid = pid(name) else { return }
        kill(-pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        // An exited process whose parent is not this one (a lab `up` started it) stays a zombie until init reaps it.
        while ContinuousClock.now < deadline, kill(pid, 0) == 0, !Self.isZombie(pid) {
            reap(pid)
            usleep(20_000)
        }
        // Whatever is left of its group (a zombie leader's children too).
        if kill(pid, 0) == 0 { kill(-pid, SIGKILL) }
        reap(pid)
    }

    /// Kills a process and its group at once with SIGKILL, as a crash or the OOM killer would (fault tests).
    public func sigkill(_ name: String) {
        defer { try? FileManager.default.removeItem(atPath: layout.pid(name)) }
        guard let pid = pid(name) else { return }
        kill(-pid, SIGKILL)
        // Gone, or a zombie that its parent (this process, or init for a lab `up` started) reaps.
        while kill(pid, 0) == 0, !Self.isZombie(pid) {
            reap(pid)
            usleep(10_000)
        }
        reap(pid)
    }

    /// Names with a pid file.
    public var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: layout.pids)) ?? []).filter { $0.hasSuffix(".pid") }.map { String($0.dropLast(4)) }.sorted()
    }

    private func reap(_ pid: Int32) {
        var status: Int32 = 0
        _ = waitpid(pid, &status, WNOHANG)
    }
}
