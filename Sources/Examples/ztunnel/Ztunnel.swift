import ArgumentParser
import ExampleSupport
import Foundation
import HBONE
import Logging
import MeshIdentity
import MeshMonitoring
import NIOCore
import NIOPosix
import NodeProxy
import XDSClient

/// `ztunnel`: a first Istio-ambient-style L4 node proxy in local-config mode.
///
/// Inbound: HBONE (HTTP/2 CONNECT over SPIFFE mTLS) on 15008 to workloads of this
/// node. Outbound: a SOCKS5 listener on 127.0.0.1:15080 that tunnels to the
/// destination workload's HBONE address with this node's identity. Readiness on
/// 15021 `/healthz/ready`. Mesh state comes from a local config file, loaded into
/// XDSClient's WorkloadStore ("xDS from a file"), or from a control plane over ADS
/// (`--xds-address`, e.g. `meshctl xds serve`), with ztunnel's node identity.
@main
struct Ztunnel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ztunnel",
        abstract: "An L4 node proxy: HBONE inbound, SOCKS5 outbound, mesh state from a local config or xDS."
    )

    @Option(help: "Local config (YAML, ztunnel's LOCAL_XDS shape: workloads, services, policies).")
    var config: String?

    @Option(help: "Control plane host:port to take mesh state from over ADS, instead of --config (plaintext with --svid, SPIFFE mTLS with --node-credential). Replicas comma-separated: the next is tried when a stream ends.")
    var xdsAddress: String?

    @Option(help: "xDS variant with --xds-address: delta or sotw.")
    var xdsVariant: String = "delta"

    @Option(help: "This node's name; inbound traffic is accepted only for workloads on it.")
    var node: String

    @Option(help: "One identity for every tunnel: a directory with svid.pem, svid.key and bundle.pem (from `meshctl svid issue`).")
    var svid: String?

    @Option(help: "Per-workload identities: a directory with this node's credential (svid.pem, svid.key, bundle.pem from `mesh-controlplane node-credential`). Needs --xds-address and --ca-address.")
    var nodeCredential: String?

    @Option(help: "Istio CA host:port (mesh-controlplane's 15012) that signs each local workload's certificate, with --node-credential. Replicas comma-separated: a request that fails is sent to the next.")
    var caAddress: String?

    @Option(help: "The SPIFFE ID the control plane must present, with --node-credential (default: spiffe://TRUST-DOMAIN/ns/istio-system/sa/istiod).")
    var controlPlaneIdentity: String?

    @Option(help: "HBONE listen address.")
    var hboneListen: String = "0.0.0.0:15008"

    @Option(help: "HBONE port of destination workloads.")
    var hbonePort: Int = 15008

    @Option(help: "SOCKS5 listen address (keep it on loopback).")
    var socks5: String = "127.0.0.1:15080"

    @Option(help: "Readiness listen address (GET /healthz/ready).")
    var readiness: String = "0.0.0.0:15021"

    @Option(help: "Prometheus metrics listen address (/metrics and /stats/prometheus).")
    var metricsAddress: String = "0.0.0.0:15020"

    @Option(help: "Admin listen address (/config_dump, /logging?level=, POST /quitquitquit); keep it on loopback.")
    var adminAddress: String = "127.0.0.1:15000"

    @Option(help: "Seconds an outbound HBONE connection with no open stream stays pooled before it is closed.")
    var poolIdleTimeout: Int = 300

    @Option(help: "Seconds between HTTP/2 PINGs on pooled outbound HBONE connections.")
    var keepaliveInterval: Int = 10

    @Option(help: "Seconds a PING may go unanswered before its HBONE connection is closed as dead.")
    var keepaliveTimeout: Int = 20

    @Flag(help: "Carry tunnelled bytes through NIOHTTP2's stream channels instead of HBONE's data path (same frames on the wire; for comparison or as a fallback).")
    var nioHTTP2DataPath = false

    @Option(help: "In-pod capture: the node agent's ZDS socket (Istio's default is /var/run/ztunnel/ztunnel.sock). ztunnel connects to it and captures each pod the agent enrolls, with listeners inside the pod's network namespace.")
    var zdsSocket: String?

    @Option(parsing: .upToNextOption, help: "With --zds-socket: resolvers (host:port) for names outside the mesh (default: the nameservers of /etc/resolv.conf).")
    var dnsUpstream: [String] = []

    @Flag(inversion: .prefixedNo, help: "With --zds-socket: answer each captured pod's DNS on 15053 (mesh Services by name, the rest forwarded).")
    var dnsProxy = true

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func validate() throws {
        guard (svid == nil) != (nodeCredential == nil) else { throw ValidationError("give exactly one of --svid and --node-credential") }
        guard (config == nil) != (xdsAddress == nil) else { throw ValidationError("give exactly one of --config and --xds-address") }
        guard keepaliveInterval > 0, keepaliveTimeout > 0 else { throw ValidationError("--keepalive-interval and --keepalive-timeout must be positive") }
        if nodeCredential != nil, xdsAddress == nil || caAddress == nil {
            throw ValidationError("--node-credential needs --xds-address and --ca-address (the control plane)")
        }
    }

    func run() async throws {
        unblockShutdownSignals()
        let logLevelControl = bootstrapLogging(logLevel)
        let logger = Logger(label: "ztunnel")
        let store = try config.map { try WorkloadStore(LocalConfig.load(path: $0)) } ?? WorkloadStore()
        let identity = try ZtunnelIdentity.load(svid: svid, nodeCredential: nodeCredential, caAddress: caAddress, controlPlaneIdentity: controlPlaneIdentity,
                                                store: store, node: node, logger: logger)
        var xds: ADSClient?
        if let address = xdsAddress {
            let servers = try HostPort.parseList(address).map { ADSClient.Server(host: $0.0, port: $0.1) }
            guard let variant = ADSClient.Variant(rawValue: xdsVariant) else { throw ValidationError("--xds-variant must be delta or sotw") }
            xds = ADSClient(configuration: .init(
                servers: servers, variant: variant,
                node: XDSNode.ztunnel(podName: "ztunnel-\(node)", namespace: "istio-system", podIP: try HostPort.parse(hboneListen).0, nodeName: node),
                transportSecurity: identity.controlPlaneSecurity
            ))
        }
        let syncing = xds.map { client in
            let sync = WorkloadStoreSync(client: client, store: store)
            return Task {
                async let running: Void = client.run()
                async let applying: Void = sync.run()
                _ = await (running, applying)
            }
        }
        let retaining = identity.retainLocalIdentities(store: store, node: node)
        let istioMetrics = ZtunnelMetrics(store: store)
        let accessLog = AccessLog(store: store, logger: logger)
        let metrics = ObserverGroup(tunnels: [accessLog, istioMetrics], captures: [accessLog, istioMetrics])

        // Per-workload identities: the workload of this node at an address (the
        // destination of an inbound connection, the source of an outbound one).
        var localIdentity: (@Sendable (SocketAddress?) -> SPIFFEID?)?
        if identity.perWorkload {
            let node = self.node
            localIdentity = { address in identity.localIdentity(address, store: store, node: node) }
        }
        let (hboneHost, hbonePortNumber) = try HostPort.parse(hboneListen)
        // In-pod capture: listeners and connections inside the namespaces of the pods the node agent enrolls.
        let workers = NamespaceWorkers()
        let capture = zdsSocket.map { _ in InPodCapture(workers: workers, logger: logger) }
        let server = HBONEServer(
            identities: identity.tls,
            serverIdentity: localIdentity,
            handler: WorkloadInboundHandler(store: store, node: node, logger: logger),
            configuration: HBONEServerConfiguration(host: hboneHost, port: hbonePortNumber, http2: HBONEHTTP2Settings(fastDataPath: !nioHTTP2DataPath),
                                                    connector: capture),
            metrics: metrics,
            logger: logger
        )
        let hboneAddress = try await server.start()
        let client = HBONEClient(
            tls: identity.tls,
            configuration: HBONEClientConfiguration(http2: HBONEHTTP2Settings(maxConcurrentStreams: 100, fastDataPath: !nioHTTP2DataPath),
                                                     keepalive: HBONEKeepalive(interval: .seconds(Int64(keepaliveInterval)), timeout: .seconds(Int64(keepaliveTimeout))),
                                                     idleTimeout: .seconds(Int64(poolIdleTimeout)), connector: capture),
            metrics: metrics,
            logger: logger
        )
        let outbound = OutboundRouter(
            store: store, client: client, hbonePort: hbonePort,
            sourceIdentity: localIdentity, connector: capture,
            logger: logger)
        // After a load peak, freed connection buffers go back to the kernel (docs/reliability.md, part 3).
        let trimming = Task { await HeapTrimmer(logger: logger).run() }
        var enrolling: Task<Void, Never>?
        if let capture, let zdsSocket {
            let dns = dnsProxy ? DNSProxy(store: store, upstreams: try dnsUpstreams(), logger: logger) : nil
            capture.attach(server: server, router: outbound, store: store, node: node, observer: metrics, dns: dns)
            let zds = ZDSClient(path: zdsSocket, handler: capture, workers: workers, logger: logger)
            enrolling = Task { await zds.run() }
        }
        let socks = try await SOCKS5Server.start(address: HostPort.parse(socks5), router: outbound, logger: logger)
        // Ready once the mesh state arrived (at once with a local config).
        let fromControlPlane = xdsAddress != nil
        let (readyHost, readyPort) = try HostPort.parse(readiness)
        let ready = try await MonitoringServer.start(host: readyHost, port: readyPort) { request in
            guard request.path == "/healthz/ready" else { return .notFound }
            return !fromControlPlane || store.version > 0 ? MonitoringReply(body: "ready\n")
                : MonitoringReply(status: .serviceUnavailable, body: "not ready: no mesh state yet\n")
        }
        let (metricsHost, metricsPort) = try HostPort.parse(metricsAddress)
        let adsClient = xds
        let metricsServer = try await MonitoringServer.start(host: metricsHost, port: metricsPort) { request in
            guard request.path == "/metrics" || request.path == "/stats/prometheus" else { return .notFound }
            return MonitoringReply(contentType: "text/plain; version=0.0.4",
                                   body: istioMetrics.render(capturedPods: capture?.capturedUIDs.count ?? 0, xds: adsClient?.counters,
                                                             certificateRequests: identity.certificates.map { ($0.requestCounts.sent, $0.requestCounts.failed) },
                                                             logLinesDropped: LogWriter.standardError.droppedLines))
        }
        let certificates = identity.certificates
        let admin = ZtunnelAdmin(
            store: store, capture: capture, pool: client.pool, xds: xds,
            certificates: {
                await certificates?.statuses().map { ZtunnelAdmin.Certificate(identity: "\($0.identity)", expiresAt: $0.expiresAt, renewAt: $0.renewAt) } ?? []
            },
            logLevel: { name in
                guard let name else { return logLevelControl.current.rawValue }
                guard let level = Logger.Level(rawValue: name) else { return nil }
                logLevelControl.current = level
                return level.rawValue
            },
            quit: { kill(getpid(), SIGTERM) })
        let (adminHost, adminPort) = try HostPort.parse(adminAddress)
        let adminServer = try await MonitoringServer.start(host: adminHost, port: adminPort) { request in await admin.reply(request) }
        logger.info("ztunnel ready", metadata: [
            "node": "\(node)", "identity": "\(identity.description)", "hbone": "\(hboneAddress)",
            "socks5": "\(socks.localAddress.map { "\($0)" } ?? "-")", "readiness": "\(readyHost):\(ready.port)", "metrics": "\(metricsHost):\(metricsServer.port)", "admin": "\(adminHost):\(adminServer.port)",
            "workloads": "\(store.counts.workloads)", "policies": "\(store.counts.policies)",
            "mesh_state": "\(xdsAddress.map { "xds \($0) (\(xdsVariant))" } ?? "local config")",
            "capture": "\(zdsSocket.map { "in-pod (ZDS \($0))" } ?? "none (SOCKS5 only)")",
        ])

        await waitForTermination()
        logger.info("ztunnel draining")
        xds?.shutdown()
        await syncing?.value
        retaining?.cancel()
        enrolling?.cancel()
        await enrolling?.value
        trimming.cancel()
        await capture?.close()
        try? await socks.close()
        await ready.close()
        await metricsServer.close()
        await adminServer.close()
        await server.shutdown()
        await client.close()
        await identity.close()
        await workers.shutdown()
    }
}

extension Ztunnel {
    /// `--dns-upstream`, or the nameservers of /etc/resolv.conf (port 53).
    func dnsUpstreams() throws -> [SocketAddress] {
        let given = dnsUpstream.flatMap { $0.split(separator: ",").map(String.init) }
        guard !given.isEmpty else { return DNSProxy.nameservers(resolvConf: (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? "") }
        return try given.map { value in
            let (host, port) = try HostPort.parse(value)
            return try SocketAddress(ipAddress: host, port: port)
        }
    }
}
