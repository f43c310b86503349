import ArgumentParser
import ExampleSupport
import Foundation
import IdentityServices
import Logging
import MeshControlPlane
import MeshMonitoring
import MeshIdentity
import ServiceLifecycle
import XDSServer

/// `mesh-controlplane`: the role of istiod. Reads Kubernetes manifests from a
/// directory, serves them as xDS (Istio ambient and Envoy resources) and runs
/// the Istio CA, both on 15012 with SPIFFE mTLS.
@main
struct MeshControlPlaneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh-controlplane",
        abstract: "A mesh control plane: Kubernetes manifests to xDS, and a CA for per-workload identities.",
        subcommands: [Serve.self, CA.self, NodeCredentialCommand.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve manifests over ADS and sign workload certificates (the default command).",
        discussion: "Stop with SIGINT or SIGTERM: open xDS streams are ended with UNAVAILABLE so clients reconnect elsewhere."
    )

    @Option(help: "Directory tree of Kubernetes YAML manifests (watched for changes).")
    var manifests: String

    @Option(help: "CA directory (from `mesh-controlplane ca init`).")
    var caDir: String

    @Option(help: "ADS and CA over SPIFFE mTLS (istiod's 15012).")
    var address: String = "0.0.0.0:15012"

    @Option(help: "Also serve ADS in plaintext here, for development (e.g. 127.0.0.1:15010). Off by default.")
    var plaintextAddress: String?

    @Option(help: "Monitoring: /metrics, /ready, /debug/syncz (istiod's 15014).")
    var monitoringAddress: String = "0.0.0.0:15014"

    @Option(help: "Trust domain of workload identities.")
    var trustDomain: String = "cluster.local"

    @Option(help: "Lifetime of workload certificates (Istio's DEFAULT_WORKLOAD_CERT_TTL), e.g. 24h; ztunnels renew at half of it.")
    var workloadCertTTL: String = "24h"

    @Option(help: "How the manifest directory is watched: inotify (changes seen at once; a full walk every minute as a safety net) or poll (a full walk every --poll-milliseconds, for file systems written from elsewhere).")
    var manifestWatch: ManifestWatchMode = .inotify

    @Option(help: "How often to walk the manifest directory when polling (also the fallback when inotify is unavailable), in milliseconds.")
    var pollMilliseconds: Int = 200

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        unblockShutdownSignals()
        bootstrapLogging(logLevel)
        let logger = Logger(label: "mesh-controlplane")
        let caDirectory = CADirectory(path: caDir)
        let ca = try caDirectory.load()
        let trust = try TrustDomain(trustDomain)
        guard ca.trustDomain == trust else {
            throw ValidationError("the CA in \(caDir) is for trust domain \(ca.trustDomain), not \(trust)")
        }
        let options = MeshOptions(trustDomain: trustDomain)
        let cache = XDSSnapshotCache()
        let metrics = ControlPlaneMetrics()
        let controlPlane = ControlPlane(cache: cache, options: options, metrics: metrics, logger: logger)
        let source = DirectoryClusterSource(directory: manifests, pollInterval: .milliseconds(pollMilliseconds), inotify: manifestWatch == .inotify)
        // The first configuration must be good: there is no last good state to fall back on.
        let first = source.load()
        guard await controlPlane.apply(first) else {
            let reason = await controlPlane.lastRefusal ?? "unknown"
            throw ValidationError("cannot start: the manifests in \(manifests) are refused: \(reason)")
        }

        let serverID = try SPIFFEID("spiffe://\(trust.name)/ns/istio-system/sa/istiod")
        // The CA signs with whatever the directory holds (root rotation: `ca rotate`), and the roots it lists are trusted.
        let authority = RotatingAuthority(signer: ca, roots: try caDirectory.roots())
        let bundles = TrustBundleStore(TrustBundle(trustDomain: trust, authorities: authority.current.roots, sequenceNumber: 1))
        // The control plane's own serving certificate, renewed at half of its 24 h lifetime, and at once by a new signer.
        let svids = SVIDSource(provider: authority.provider(for: serverID, ttl: 24 * 3600), logger: logger)
        svids.publish(try ca.issueSVID(for: serverID, ttl: 24 * 3600))
        let caWatcher = CADirectoryWatcher(directory: caDirectory, authority: authority, bundles: bundles, logger: logger) { signer in
            if let svid = try? signer.issueSVID(for: serverID, ttl: 24 * 3600) { svids.publish(svid, obtainedAt: Date()) }
        }
        let security = try SPIFFEGRPCSecurity.server(svids: svids, bundles: bundles, authorizer: .memberOf(trust))
        let caCounters = IstioCACounters()
        let workloadTTL = try DurationText.seconds(workloadCertTTL)
        let caService = IstioCAServer.service(
            authority: authority, authenticator: MTLSCallerAuthenticator(),
            configuration: .init(defaultTTL: workloadTTL, maximumTTL: max(workloadTTL, 90 * 24 * 3600), impersonationPolicy: controlPlane, counters: caCounters),
            logger: logger)
        let (host, port) = try HostPort.parse(address)
        let secure = XDSServer(cache: cache, configuration: .init(host: host, port: port, transportSecurity: security),
                               additionalServices: [caService], observer: metrics, logger: logger)
        let plaintext = try plaintextAddress.map { value in
            let (host, port) = try HostPort.parse(value)
            return (host: host, server: XDSServer(cache: cache, configuration: .init(host: host, port: port), observer: metrics, logger: logger))
        }
        let servers = [secure] + (plaintext.map { [$0.server] } ?? [])
        let (monitoringHost, monitoringPort) = try HostPort.parse(monitoringAddress)
        let monitoring = try await MonitoringServer.start(host: monitoringHost, port: monitoringPort) { request in
            await MonitoringRoutes.reply(path: request.path, controlPlane: controlPlane, servers: servers, metrics: metrics, ca: caCounters)
        }

        // swift-service-lifecycle runs the servers and the manifest watcher; SIGTERM or SIGINT
        // starts a graceful shutdown: open xDS streams end with UNAVAILABLE (clients keep their
        // state and reconnect elsewhere), then the listeners close.
        var services: [any Service] = servers.map { server in
            ClosureService {
                try await withGracefulShutdownHandler { try await server.run() } onGracefulShutdown: { server.shutdown() }
            }
        }
        services.append(ClosureService {
            let renewing = Task { _ = try? await svids.run() }
            let watching = Task { await controlPlane.run(source: source) }
            let followingCA = Task { await caWatcher.run() }
            try? await gracefulShutdown()
            watching.cancel()
            renewing.cancel()
            followingCA.cancel()
            await watching.value
            await monitoring.close()
        })
        services.append(ClosureService {
            // The bound ports, so that port 0 ("any free port") can be given and read back.
            let port = try await secure.listeningPort()
            var plaintextListening = "off"
            if let plaintext { plaintextListening = "\(plaintext.host):\(try await plaintext.server.listeningPort())" }
            logger.notice("mesh-controlplane serving", metadata: [
                "manifests": "\(manifests)", "xds_ca_mtls": "\(host):\(port)",
                "xds_plaintext": "\(plaintextListening)", "monitoring": "\(monitoringHost):\(monitoring.port)",
                "trust_domain": "\(trust.name)", "workload_cert_ttl": "\(workloadCertTTL)",
            ])
            try? await gracefulShutdown()
            logger.notice("draining: ending xDS streams and stopping")
        })
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0, successTerminationBehavior: .ignore) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        logger.notice("mesh-controlplane stopped")
    }
}

struct CA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ca", abstract: "Manage the mesh CA.", subcommands: [Init.self, Rotate.self])

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One step of a root rotation in --dir: add (a new root, trusted, not signing), switch (the new root signs), finish (the old root dropped).",
            discussion: """
                A running mesh-controlplane follows each step within a second. Between steps, wait at least half a workload \
                certificate's lifetime after `add` (every ztunnel renews once and learns the new root) and a whole lifetime \
                after `switch` (every certificate of the old root is replaced; ztunnels renew their node credential under \
                the new root when they see it sign). Node credential directories written before `finish` are of the old root.
                """)

        @Argument(help: "add, switch or finish.") var step: String
        @Option(help: "CA directory.") var dir: String
        @Option(help: "Validity of a new root in days (with add).") var days: Int = 365

        func run() async throws {
            guard let step = CADirectory.RotationStep(rawValue: step) else { throw ValidationError("the step is add, switch or finish, not \(step)") }
            print(try CADirectory(path: dir).rotate(step, validity: TimeInterval(days) * 86400))
        }
    }

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a self-signed root CA: ca.pem, ca.key (0600), bundle.json and bundle.pem in --dir.")

        @Option(help: "CA directory.") var dir: String
        @Option(help: "Trust domain.") var trustDomain: String = "cluster.local"
        @Option(help: "Validity of the root in days.") var days: Int = 365
        @Flag(help: "Replace an existing CA.") var force = false

        func run() async throws {
            let trust = try TrustDomain(trustDomain)
            try CADirectory(path: dir).create(trustDomain: trust, validity: TimeInterval(days) * 86400, force: force)
            print("created CA for trust domain \(trust.name) in \(dir)")
        }
    }
}

struct NodeCredentialCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node-credential",
        abstract: "Issue a node's credential (spiffe://TD/node/NODE): svid.pem, svid.key, bundle.pem, bundle.json in --out.",
        discussion: "A ztunnel presents it to fetch xDS and to request the certificates of the pods on its node."
    )

    @Argument(help: "The node name (as in the Node manifest).") var node: String
    @Option(help: "CA directory.") var caDir: String
    @Option(help: "Output directory.") var out: String
    @Option(help: "Validity in hours.") var hours: Int = 24 * 30

    func run() async throws {
        let ca = CADirectory(path: caDir)
        let id = try NodeCredential.identity(node: node, trustDomain: ca.load().trustDomain.name)
        let svid = try ca.writeCredential(id: id, ttl: TimeInterval(hours) * 3600, to: out)
        print("issued \(svid.id) (expires \(svid.expiresAt)) to \(out)")
    }
}

/// `--manifest-watch`: how changes to the manifest directory are noticed.
enum ManifestWatchMode: String, ExpressibleByArgument, CaseIterable {
    case inotify
    case poll
}
