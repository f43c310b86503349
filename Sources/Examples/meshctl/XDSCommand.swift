import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import XDSClient
import XDSServer

/// `meshctl xds serve`: a small control plane that serves a ztunnel-shaped
/// local config file to every node as Istio ambient resources over ADS
/// (`istio.workload.Address`, `istio.security.Authorization`; SotW and delta),
/// and pushes what changed when the file changes.
struct XDSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xds",
        abstract: "A small xDS control plane.",
        subcommands: [Serve.self]
    )

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve a local config (workloads, services, policies) to every node over ADS, plaintext.",
            discussion: "The file is re-read when it changes; only what changed is pushed. Stop with SIGINT or SIGTERM."
        )

        @Option(help: "Local config (YAML, ztunnel's local config shape).")
        var config: String

        @Option(help: "Listen address host:port (istiod's plaintext xDS port is 15010).")
        var listen: String = "127.0.0.1:15010"

        @Option(help: "How often to look for changes to the file, in seconds.")
        var reloadInterval: Double = 1

        func run() async throws {
            try await reportingErrors {
                let logger = Logger(label: "meshctl.xds")
                guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
                    throw CommandFailure(message: "error: --listen \(listen) is not host:port", code: 2)
                }
                let cache = XDSSnapshotCache()
                var served = try XDSSnapshot(Self.resources(config))
                await cache.setSnapshotForAllNodes(served)
                let server = XDSServer(cache: cache, configuration: .init(host: String(listen[..<colon]), port: port))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await server.run() }
                    let bound = try await server.listeningPort()
                    logger.notice("serving", metadata: ["resources": "\(served.resources.values.map(\.count).reduce(0, +))", "config": "\(config)", "address": "\(listen[..<colon]):\(bound)"])
                    var modified = Self.modificationDate(config)
                    let stop = StopSignal()
                    while !stop.requested {
                        try await Task.sleep(for: .seconds(reloadInterval))
                        let now = Self.modificationDate(config)
                        guard now != modified else { continue }
                        modified = now
                        do {
                            let next = try XDSSnapshot(Self.resources(config))
                            let (upserts, removals) = served.changes(to: next)
                            try await cache.updateSnapshotForAllNodes(upserting: upserts, removing: removals)
                            served = next
                            logger.notice("config reloaded", metadata: ["upserted": "\(upserts.count)", "removed": "\(removals.count)"])
                        } catch {
                            logger.error("config not reloaded; still serving the previous one", metadata: ["error": "\(error)"])
                        }
                    }
                    server.shutdown()
                    try await group.waitForAll()
                }
            }
        }

        static func resources(_ path: String) throws -> [XDSResource] {
            let snapshot = try LocalConfig.load(path: path)
            return try snapshot.istioAddresses().map { try XDSResource(name: $0.name, message: $0.address) }
                + snapshot.istioAuthorizations().map { try XDSResource(name: $0.name, message: $0.authorization) }
        }

        static func modificationDate(_ path: String) -> Date? {
            (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        }
    }
}

/// Set by SIGINT or SIGTERM.
final class StopSignal {
    private let flag = SetOnceFlag()
    private let sources: [any DispatchSourceSignal]

    init() {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let flag = self.flag
        sources = [SIGINT, SIGTERM].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { flag.set() }
            source.resume()
            return source
        }
    }

    var requested: Bool { flag.isSet }
}

final class SetOnceFlag: Sendable {
    private let value = NIOLockedValueBox(false)
    func set() { value.withLockedValue { $0 = true } }
    var isSet: Bool { value.withLockedValue { $0 } }
}
