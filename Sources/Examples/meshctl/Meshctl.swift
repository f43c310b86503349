import ArgumentParser
import Foundation
import Logging

/// meshctl: the swift-mesh command line.
///
/// Exit codes: 0 success; 1 the answer is "no" (verification failed, invalid ID,
/// policy denied); 2 input could not be read or used.
@main
struct Meshctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshctl",
        abstract: "Operate a swift-mesh: identities, certificates, mTLS probes and policies.",
        subcommands: [CACommand.self, SVIDCommand.self, IDCommand.self, TLSCommand.self, PolicyCommand.self, XDSCommand.self]
    )

    static func main() async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["MESH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .notice
            return handler
        }
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// A failure with a one-line message and an exit code.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var code: Int32

    var description: String { message }
}

/// Runs `body`, turning any error into one line on stderr and a non-zero exit.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch let failure as CommandFailure {
        FileHandle.standardError.write(Data("meshctl: \(failure.message)\n".utf8))
        throw ExitCode(failure.code)
    } catch {
        let line = String(describing: error).replacingOccurrences(of: "\n", with: " ")
        FileHandle.standardError.write(Data("meshctl: error: \(line)\n".utf8))
        throw ExitCode(2)
    }
}

/// Writes a file, creating its directory; `secret` files get mode 0600.
func writeFile(_ path: String, _ contents: String, secret: Bool = false) throws {
    let url = URL(fileURLWithPath: path)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    let attributes: [FileAttributeKey: Any]? = secret ? [.posixPermissions: 0o600] : nil
    guard FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: attributes) else {
        throw CommandFailure(message: "error: cannot write \(path)", code: 2)
    }
}

func readFile(_ path: String, what: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        throw CommandFailure(message: "error: cannot read \(what) \(path)", code: 2)
    }
    return text
}

/// Parses durations such as `90s`, `30m`, `1h`, `1h30m`, `2d`.
struct DurationArgument: ExpressibleByArgument {
    var seconds: TimeInterval

    init(seconds: TimeInterval) { self.seconds = seconds }

    init?(argument: String) {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var total: TimeInterval = 0
        var number = ""
        for character in argument {
            if character.isNumber || character == "." {
                number.append(character)
            } else if let unit = units[character], let value = Double(number) {
                total += value * unit
                number = ""
            } else {
                return nil
            }
        }
        guard number.isEmpty, total > 0 else { return nil }
        seconds = total
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
