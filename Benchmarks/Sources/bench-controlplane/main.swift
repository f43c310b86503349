// bench-controlplane: MeshControlPlane at the size of a mid-sized cluster.
// 10,000 pods on 100 nodes, 1,000 Services, 1,000 AuthorizationPolicies and
// 1,000 NetworkPolicies are generated as manifests into a temp directory (one
// file per pod, one per namespace with its ServiceAccounts, Services and
// policies, and nodes.yaml). The control plane runs in a child process
// (ControlPlane + DirectoryClusterSource + XDSServer with the Istio CA on the
// same port, as mesh-controlplane serves them, plaintext on 127.0.0.1); this
// process runs the clients: 100 delta ADS clients as bench-xds uses them
// (ADSClient + WorkloadStoreSync into a WorkloadStore, i.e. ztunnel's Address
// and Authorization subscriptions) and the CSR clients.
//
// Measured, each against a baseline from the same run:
// - cold start (read + decode + validate + convert + first snapshot) vs reading
//   and parsing the same files with Yams alone;
// - the control plane's RSS (child's VmRSS and VmHWM from /proc/self/status);
// - the initial push to 100 clients vs to a single client;
// - one pod's file edit (a label that changes the pod's AuthorizationPolicy
//   selection, so exactly one Address resource changes) until every client's
//   watch has seen it (the client ACKs before the watch sees it), p50/p99, in
//   two modes: `apply(source.load())` called right after the write, and the
//   ControlPlane driven by DirectoryClusterSource's watch (inotify, 20 ms quiet period);
// - CSRs signed per second over gRPC (node token + ImpersonatedIdentity,
//   checked by the ControlPlane's NodeImpersonationRule) vs in-process
//   CertificateAuthority.issue(csrPEM:) on one thread.
//
// Usage: bench-controlplane [PODS]          (client; spawns the server; 10,000 pods)
//        bench-controlplane server DIR NODES (internal)
// Environment: BENCH_CONTROLPLANE_EDITS (100), BENCH_CONTROLPLANE_EDIT_SECONDS
// (120, per edit mode), BENCH_CONTROLPLANE_CLIENTS (100), BENCH_CONTROLPLANE_CSR_SECONDS (5).
import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import IdentityServices
import Logging
import MeshControlPlane
import MeshIdentity
import MeshProto
import SwiftProtobuf
import Synchronization
import X509
import XDSClient
import XDSServer
import Yams

// MARK: Shared helpers

/// A line on stdout, unbuffered (the parent reads it through a pipe).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("bench-controlplane: \(message)\n".utf8))
    exit(1)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func environment(_ name: String, default value: Int) -> Int {
    ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? value
}

/// VmRSS and VmHWM of this process, in bytes.
func memoryStatus() -> (rss: Int, peak: Int) {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
    func field(_ name: String) -> Int {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }
    return (field("VmRSS"), field("VmHWM"))
}

/// User plus system CPU seconds of this process.
/// CPU time of the calling thread, to the nanosecond (for work that runs on one thread without suspending).
func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

func cpuSeconds() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return 0 }
    // After "pid (comm)": state is field 3, utime field 14, stime field 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// A logger that lets warnings and errors through only.
func quietLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .warning
    return logger
}

/// Lines read from a file handle by a dedicated thread (so no cooperative
/// thread blocks on a read), taken with a deadline.
final class LineReader: Sendable {
    private struct State {
        var lines: [String] = []
        var partial = Data()
        var ended = false
    }

    private let state = Mutex(State())

    init(_ handle: FileHandle) {
        let thread = Thread { [self] in
            while true {
                let chunk = handle.availableData
                let finished = self.state.withLock { state -> Bool in
                    if chunk.isEmpty {
                        state.ended = true
                        return true
                    }
                    state.partial.append(chunk)
                    while let newline = state.partial.firstIndex(of: 0x0a) {
                        state.lines.append(String(decoding: state.partial[state.partial.startIndex..<newline], as: UTF8.self))
                        state.partial.removeSubrange(state.partial.startIndex...newline)
                    }
                    return false
                }
                if finished { return }
            }
        }
        thread.start()
    }

    /// The next line, or nil at end of input or when `limit` passes first.
    func next(within limit: Duration) async -> String? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let taken = state.withLock { state -> (String?, Bool) in
                state.lines.isEmpty ? (nil, state.ended) : (state.lines.removeFirst(), false)
            }
            if let line = taken.0 { return line }
            if taken.1 { return nil }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return nil
    }
}

// MARK: The generated cluster

/// The cluster's shape and its manifests. Pod `p` is `pod-J` in `ns-N`
/// (N = p / podsPerNamespace), runs on `node-(p % nodes)`, belongs to app
/// `app-A` (A = J % appsPerNamespace) and uses service account `sa-A`. Every
/// app has one Service, one AuthorizationPolicy (selecting `app` and
/// `authz: "on"`) and one NetworkPolicy.
struct Cluster {
    let pods: Int
    let namespaces: Int
    let nodes: Int
    let appsPerNamespace: Int
    let trustDomain = "cluster.local"

    init(pods: Int) {
        self.pods = pods
        self.namespaces = max(1, pods / 100)
        self.nodes = max(100, (pods + 99) / 100)
        self.appsPerNamespace = 10
    }

    var podsPerNamespace: Int { pods / namespaces }
    var services: Int { namespaces * appsPerNamespace }
    var authorizationPolicies: Int { services }
    var networkPolicies: Int { services }
    var serviceAccounts: Int { namespaces * appsPerNamespace }

    func namespace(ofPod p: Int) -> Int { p / podsPerNamespace }
    func indexInNamespace(_ p: Int) -> Int { p % podsPerNamespace }
    func app(ofPod p: Int) -> Int { indexInNamespace(p) % appsPerNamespace }
    func node(ofPod p: Int) -> Int { p % nodes }
    func uid(ofPod p: Int) -> String { "Kubernetes//Pod/ns-\(namespace(ofPod: p))/pod-\(indexInNamespace(p))" }
    func podFile(_ directory: String, _ p: Int) -> String { "\(directory)/pods/ns-\(namespace(ofPod: p))/pod-\(indexInNamespace(p)).yaml" }

    func podManifest(_ p: Int, authz: String = "on") -> String {
        let app = app(ofPod: p)
        return """
        apiVersion: v1
        kind: Pod
        metadata:
          name: pod-\(indexInNamespace(p))
          namespace: ns-\(namespace(ofPod: p))
          labels:
            app: app-\(app)
            version: v1
            authz: "\(authz)"
        spec:
          nodeName: node-\(node(ofPod: p))
          serviceAccountName: sa-\(app)
          containers:
          - name: app
            image: registry.example/app-\(app):1.0
            ports:
            - name: http
              containerPort: 8080

        """
    }

    func namespaceManifest(_ n: Int) -> String {
        var text = """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: ns-\(n)
          labels:
            istio.io/dataplane-mode: ambient

        """
        let next = (n + 1) % namespaces
        for a in 0..<appsPerNamespace {
            let peer = (a + 1) % appsPerNamespace
            text += """
            ---
            apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: sa-\(a)
              namespace: ns-\(n)
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: app-\(a)
              namespace: ns-\(n)
            spec:
              selector:
                app: app-\(a)
              ports:
              - name: http
                port: 80
                targetPort: http
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: allow-app-\(a)
              namespace: ns-\(n)
            spec:
              selector:
                matchLabels:
                  app: app-\(a)
                  authz: "on"
              action: ALLOW
              rules:
              - from:
                - source:
                    principals: ["\(trustDomain)/ns/ns-\(n)/sa/sa-\(peer)"]
                to:
                - operation:
                    ports: ["8080"]
              - from:
                - source:
                    namespaces: ["ns-\(next)"]
            ---
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: ingress-app-\(a)
              namespace: ns-\(n)
            spec:
              podSelector:
                matchLabels:
                  app: app-\(a)
              policyTypes: [Ingress]
              ingress:
              - from:
                - podSelector:
                    matchLabels:
                      app: app-\(peer)
                - namespaceSelector:
                    matchLabels:
                      kubernetes.io/metadata.name: ns-\(next)
                ports:
                - protocol: TCP
                  port: 8080

            """
        }
        return text
    }

    func nodesManifest() -> String {
        (0..<nodes).map { k in
            """
            apiVersion: v1
            kind: Node
            metadata:
              name: node-\(k)
              labels:
                kubernetes.io/hostname: node-\(k)

            """
        }.joined(separator: "---\n")
    }

    /// Writes every manifest; returns the number of files and bytes.
    func write(to directory: String) throws -> (files: Int, bytes: Int) {
        var files = 0
        var bytes = 0
        func put(_ path: String, _ text: String) throws {
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            files += 1
            bytes += text.utf8.count
        }
        let manager = FileManager.default
        try manager.createDirectory(atPath: directory + "/cluster", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: directory + "/namespaces", withIntermediateDirectories: true)
        try put(directory + "/cluster/nodes.yaml", nodesManifest())
        for n in 0..<namespaces {
            try put(directory + "/namespaces/ns-\(n).yaml", namespaceManifest(n))
            try manager.createDirectory(atPath: directory + "/pods/ns-\(n)", withIntermediateDirectories: true)
        }
        for p in 0..<(namespaces * podsPerNamespace) {
            try put(podFile(directory, p), podManifest(p))
        }
        return (files, bytes)
    }

    /// The pod of edit `e`: distinct pods for up to `pods` edits.
    func editedPod(_ e: Int) -> Int { (e &* 7919 &+ 13) % (namespaces * podsPerNamespace) }
}

// MARK: Server role (the control plane, in its own process)

func runServer(directory: String, nodes: Int) async throws {
    let logger = quietLogger("bench-controlplane.server")
    let (commands, commandSink) = AsyncStream<String>.makeStream()
    let reader = Thread {
        while let line = readLine() { commandSink.yield(line) }
        commandSink.finish()
    }
    reader.start()

    let cache = XDSSnapshotCache()
    let metrics = ControlPlaneMetrics()
    let controlPlane = ControlPlane(cache: cache, options: MeshOptions(), metrics: metrics, logger: logger)
    let source = DirectoryClusterSource(directory: directory, pollInterval: .milliseconds(200), loader: ClusterManifestLoader(logger: logger))

    // Cold start: read + decode + validate, then convert + first snapshot.
    let clock = ContinuousClock()
    let start = clock.now
    let first = source.load()
    let loaded = clock.now
    guard await controlPlane.apply(first) else {
        let reason = await controlPlane.lastRefusal ?? "refused"
        emit("FAILED \(reason)")
        return
    }
    let served = clock.now
    let memory = memoryStatus()
    let counts = await controlPlane.current?.counts ?? [:]
    emit("COLDSTART \(seconds(loaded - start)) \(seconds(served - loaded)) \(memory.rss) \(memory.peak)")
    emit("COUNTS " + counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))

    // The Istio CA beside ADS on one port, as mesh-controlplane serves them; nodes
    // authenticate with a token and impersonate the service accounts of their pods.
    let trust = try TrustDomain("cluster.local")
    let authority = try CertificateAuthority.selfSigned(trustDomain: trust)
    var tokens: [String: SPIFFEID] = [:]
    for k in 0..<nodes { tokens["node-token-\(k)"] = try NodeCredential.identity(node: "node-\(k)", trustDomain: trust.name) }
    let caCounters = IstioCACounters()
    let caService = IstioCAServer.service(
        authority: authority, authenticator: BearerTokenAuthenticator(tokens: tokens),
        configuration: .init(impersonationPolicy: controlPlane, counters: caCounters), logger: logger)
    let server = XDSServer(cache: cache, configuration: .init(host: "127.0.0.1", port: 0), additionalServices: [caService],
                           observer: metrics, logger: logger)
    async let serving: Void = server.run()
    let port = try await server.listeningPort()
    emit("LISTENING \(port)")

    var watching: Task<Void, Never>?
    loop: for await line in commands {
        let words = line.split(separator: " ")
        switch words.first {
        case "rss":
            let memory = memoryStatus()
            emit("RSS \(memory.rss) \(memory.peak)")
        case "cpu":
            emit("CPU \(cpuSeconds())")
        case "reload":
            // The edit mode without polling: read the directory and apply it now.
            let begin = clock.now
            let event = source.load()
            let read = clock.now
            let applied = await controlPlane.apply(event)
            emit("RELOADED \(seconds(read - begin)) \(seconds(clock.now - read)) \(applied)")
        case "watch":
            // The production mode: ControlPlane.run over DirectoryClusterSource's events.
            // Its first event is a full read of the unchanged directory; wait for it.
            let before = await controlPlane.generation
            let begin = clock.now
            watching = Task { await controlPlane.run(source: source) }
            var waited = 0
            while await controlPlane.generation == before, waited < 600_000 {
                try? await Task.sleep(for: .milliseconds(5))
                waited += 5
            }
            emit("WATCHING \(seconds(clock.now - begin))")
        case "status":
            let clients = server.connectedClients()
            let synced = clients.filter { client in !client.types.isEmpty && client.types.values.allSatisfy(\.synced) }.count
            let nacked = clients.filter { client in client.types.values.contains { $0.lastNack != nil } }.count
            let ca = caCounters.snapshot()
            let generation = await controlPlane.generation
            emit("STATUS \(clients.count) \(synced) \(nacked) \(ca.csrs) \(ca.issued) \(ca.impersonationRefusals) \(ca.csrRefusals) \(generation)")
        case "quit":
            break loop
        default:
            emit("UNKNOWN \(line)")
        }
    }
    watching?.cancel()
    server.shutdown()
    try await serving
}

// MARK: Client role

/// The control plane child process and its line protocol.
final class ServerProcess {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    let lines: LineReader

    init(directory: String, nodes: Int) throws {
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["server", directory, String(nodes)]
        process.standardInput = input
        process.standardOutput = output
        lines = LineReader(output.fileHandleForReading)
        try process.run()
    }

    func send(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }

    /// The next line that starts with `prefix` (other lines are unexpected and end the run).
    func expect(_ prefix: String, within limit: Duration = .seconds(120)) async -> [Substring] {
        guard let line = await lines.next(within: limit) else { fail("the control plane sent no \(prefix) line within \(limit)") }
        guard line.hasPrefix(prefix + " ") || line == prefix else { fail("expected \(prefix) from the control plane, got: \(line)") }
        return Array(line.split(separator: " ").dropFirst())
    }

    func ask(_ command: String, _ reply: String, within limit: Duration = .seconds(120)) async -> [Substring] {
        send(command)
        return await expect(reply, within: limit)
    }

    func stop() {
        send("quit")
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        // Spawned processes may inherit a mask that blocks SIGTERM.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// When each client's watch saw the edit being measured: the pod's Address
/// resource without its AuthorizationPolicy.
final class EditTracker: Sendable {
    private struct State {
        var uid: String?
        var seen: [Int: ContinuousClock.Instant] = [:]
    }

    private let state = Mutex(State())

    func arm(_ uid: String) { state.withLock { $0 = State(uid: uid) } }

    func observe(client: Int, _ update: XDSWatchUpdate<MeshAddress>) {
        let now = ContinuousClock.now
        state.withLock { state in
            guard let uid = state.uid, state.seen[client] == nil, update.updated.contains(uid) else { return }
            if case .workload(let workload)? = update[uid], workload.authorizationPolicies.isEmpty { state.seen[client] = now }
        }
    }

    /// How many clients saw it, and the latest of their times.
    var progress: (count: Int, last: ContinuousClock.Instant?) { state.withLock { ($0.seen.count, $0.seen.values.max()) } }
}

/// One delta ADS client as bench-xds runs it (WorkloadStoreSync into a
/// WorkloadStore, i.e. ztunnel's Address and Authorization subscriptions),
/// plus a watch that reports the edit being measured.
struct BenchClient {
    let client: ADSClient
    let store: WorkloadStore
    let tasks: [Task<Void, Never>]

    init(index: Int, port: Int, nodes: Int, tracker: EditTracker) throws {
        let logger = quietLogger("bench-controlplane.client")
        let node = XDSNode.ztunnel(podName: "ztunnel-\(index)", namespace: "istio-system", podIP: "172.18.\(index / 250).\(index % 250 + 2)",
                                   nodeName: "node-\(index % nodes)")
        let client = ADSClient(configuration: .init(host: "127.0.0.1", port: port, variant: .delta, node: node), logger: logger)
        let store = try WorkloadStore()
        let sync = WorkloadStoreSync(client: client, store: store, logger: logger)
        let addresses = client.watch(XDSResourceType.meshAddress.retainingValues(false))
        self.client = client
        self.store = store
        tasks = [
            Task { await sync.run() },
            Task { for await update in addresses { tracker.observe(client: index, update) } },
            Task { await client.run() },
        ]
    }
}

/// Waits (polling every `interval`) until `condition` holds or `limit` passes; returns whether it held.
func waitUntil(within limit: Duration, every interval: Duration = .milliseconds(1), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return await condition()
}

/// Starts `count` clients and waits until every store holds the full state; returns the clients and the time.
func initialPush(count: Int, port: Int, cluster: Cluster, expected: (workloads: Int, services: Int, policies: Int),
                 tracker: EditTracker, limit: Duration) async throws -> (clients: [BenchClient], seconds: Double, complete: Int) {
    let clock = ContinuousClock()
    let start = clock.now
    let clients = try (0..<count).map { try BenchClient(index: $0, port: port, nodes: cluster.nodes, tracker: tracker) }
    func complete() -> Int {
        clients.filter { client in
            let counts = client.store.counts
            return counts.workloads == expected.workloads && counts.services == expected.services && counts.policies == expected.policies
        }.count
    }
    _ = await waitUntil(within: limit, every: .milliseconds(2)) { complete() == count }
    return (clients, seconds(clock.now - start), complete())
}

/// A flag set once, read from any task.
final class Flag: Sendable {
    private let value = Atomic(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Shuts clients down and waits (bounded) for their tasks.
func stopClients(_ clients: [BenchClient]) async {
    for client in clients { client.client.shutdown() }
    let done = Flag()
    let tasks = clients.flatMap(\.tasks)
    Task {
        for task in tasks { await task.value }
        done.set()
    }
    _ = await waitUntil(within: .seconds(10), every: .milliseconds(5)) { done.isSet }
}

/// The floor of any client of the initial push: the Address and Authorization
/// resources of `directory`, as one delta response each, decoded from their wire
/// bytes with SwiftProtobuf and every resource unpacked from its Any, with no
/// store, validation or conversion. Returns CPU seconds per client (the decoding
/// thread's, best of 3: it runs without suspending, so on one thread).
func decodeFloor(directory: String) throws -> Double {
    let set = try MeshResourceSet(state: ClusterManifestLoader(logger: quietLogger("bench-controlplane.floor")).load(directory: directory))
    var responses: [Data] = []
    for type in [XDSTypeURL.address, XDSTypeURL.authorization] {
        var response = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse()
        response.typeURL = type
        response.nonce = "1"
        response.resources = set.snapshot.resources(ofType: type).values.map(\.deltaResource)
        responses.append(try response.serializedData())
    }
    var best = Double.infinity
    for _ in 0..<3 {
        let start = threadCPUSeconds()
        var unpacked = 0
        for bytes in responses {
            let response = try Envoy_Service_Discovery_V3_DeltaDiscoveryResponse(serializedBytes: bytes)
            for resource in response.resources {
                if resource.resource.typeURL == XDSTypeURL.address {
                    unpacked += try Istio_Workload_Address(unpackingAny: resource.resource).workload.uid.isEmpty ? 0 : 1
                } else {
                    unpacked += try Istio_Security_Authorization(unpackingAny: resource.resource).name.isEmpty ? 0 : 1
                }
            }
        }
        best = min(best, threadCPUSeconds() - start)
        if unpacked == 0 { fail("the decode floor unpacked nothing") }
    }
    return best
}

/// Reads and parses every manifest with Yams alone (the cold-start floor).
func parseBaseline(directory: String) throws -> (seconds: Double, documents: Int) {
    let clock = ContinuousClock()
    let start = clock.now
    var documents = 0
    for path in try ClusterManifestLoader.manifestFiles(in: directory) {
        let parser = try Yams.Parser(yaml: try String(contentsOfFile: path, encoding: .utf8))
        while try parser.nextRoot() != nil { documents += 1 }
    }
    return (seconds(clock.now - start), documents)
}

struct EditResult {
    var latencies: [Double] = []
    var loads: [Double] = []
    var applies: [Double] = []
    var timeouts = 0
    var elapsed = 0.0
}

/// Edits pods `first...` one at a time until `maximum` edits or `budget` seconds; for each,
/// the time from the write until every client's watch saw the change.
func measureEdits(mode direct: Bool, first: Int, maximum: Int, budget: Double, perEdit: Duration, directory: String, cluster: Cluster,
                  clients: Int, tracker: EditTracker, server: ServerProcess) async -> EditResult {
    let clock = ContinuousClock()
    let start = clock.now
    var result = EditResult()
    var edit = first
    while result.latencies.count + result.timeouts < maximum, seconds(clock.now - start) < budget {
        let pod = cluster.editedPod(edit)
        edit += 1
        tracker.arm(cluster.uid(ofPod: pod))
        let written = clock.now
        do {
            try cluster.podManifest(pod, authz: "off").write(toFile: cluster.podFile(directory, pod), atomically: true, encoding: .utf8)
        } catch {
            fail("cannot rewrite \(cluster.podFile(directory, pod)): \(error)")
        }
        if direct { server.send("reload") }
        let all = await waitUntil(within: perEdit, every: .milliseconds(1)) { tracker.progress.count == clients }
        let progress = tracker.progress
        if all, let last = progress.last { result.latencies.append(seconds(last - written)) } else { result.timeouts += 1 }
        if direct {
            let reply = await server.expect("RELOADED", within: perEdit)
            result.loads.append(Double(reply[0]) ?? 0)
            result.applies.append(Double(reply[1]) ?? 0)
        }
    }
    result.elapsed = seconds(clock.now - start)
    return result
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded(.up)))]
}

/// A pre-made CSR: the key, the identity, the node that asks for it and its PEM.
struct CSRRequest: Sendable {
    let token: String
    let identity: SPIFFEID
    let pem: String
    let key: P256.Signing.PrivateKey
}

func makeCSRs(cluster: Cluster, count: Int) throws -> [CSRRequest] {
    try (0..<count).map { i in
        let pod = (i &* 7907 &+ 5) % (cluster.namespaces * cluster.podsPerNamespace)
        let identity = try SPIFFEID("spiffe://\(cluster.trustDomain)/ns/ns-\(cluster.namespace(ofPod: pod))/sa/sa-\(cluster.app(ofPod: pod))")
        let key = P256.Signing.PrivateKey()
        let pem = try CertificateAuthority.makeCSR(id: identity, privateKey: key).serializeAsPEM().pemString
        return CSRRequest(token: "node-token-\(cluster.node(ofPod: pod))", identity: identity, pem: pem, key: key)
    }
}

/// CSRs signed per second by the control plane's CA over gRPC: `workers`
/// connections, one request in flight on each, for `duration`.
func signOverGRPC(port: Int, csrs: [CSRRequest], workers: Int, duration: Duration) async throws
    -> (rate: Double, signed: Int, failed: Int, latencies: [Double], firstError: String?)
{
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = start + duration
    let results = try await withThrowingTaskGroup(of: (Int, Int, [Double], String?).self) { group in
        for worker in 0..<workers {
            group.addTask {
                let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
                return try await withGRPCClient(transport: transport) { grpc in
                    let ca = Istio_V1_Auth_IstioCertificateService.Client(wrapping: grpc)
                    var signed = 0
                    var failed = 0
                    var latencies: [Double] = []
                    var firstError: String?
                    var i = worker
                    while clock.now < deadline, signed + failed < 1_000_000 {
                        let csr = csrs[i % csrs.count]
                        i += workers
                        var request = Istio_V1_Auth_IstioCertificateRequest()
                        request.csr = csr.pem
                        request.validityDuration = 3600
                        request.metadata.fields["ImpersonatedIdentity"] = Google_Protobuf_Value(stringValue: csr.identity.description)
                        var metadata: Metadata = [:]
                        metadata.addString("Bearer \(csr.token)", forKey: "authorization")
                        let sent = clock.now
                        do {
                            let chain = try await ca.createCertificate(request, metadata: metadata).certChain
                            latencies.append(seconds(clock.now - sent))
                            if signed == 0 {
                                // The first reply of each connection is checked: the leaf names the requested identity.
                                let leaf = try Certificate(pemEncoded: chain.first ?? "")
                                let svid = try X509SVID(chain: [leaf], privateKey: csr.key)
                                guard svid.id == csr.identity else { throw CSRCheckError(message: "leaf is for \(svid.id), asked \(csr.identity)") }
                            }
                            signed += 1
                        } catch {
                            failed += 1
                            if firstError == nil { firstError = "\(error)" }
                        }
                    }
                    return (signed, failed, latencies, firstError)
                }
            }
        }
        var all: [(Int, Int, [Double], String?)] = []
        for try await result in group { all.append(result) }
        return all
    }
    let elapsed = seconds(clock.now - start)
    let signed = results.map(\.0).reduce(0, +)
    return (Double(signed) / elapsed, signed, results.map(\.1).reduce(0, +), results.flatMap(\.2), results.compactMap(\.3).first)
}

struct CSRCheckError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The in-process floor: what IstioCAService does per CSR (issue from the PEM CSR, PEM the chain), one thread.
func signInProcess(csrs: [CSRRequest], duration: Duration) throws -> Double {
    let authority = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("cluster.local"))
    let clock = ContinuousClock()
    let start = clock.now
    var count = 0
    while clock.now - start < duration, count < 1_000_000 {
        let csr = csrs[count % csrs.count]
        let issued = try authority.issue(csrPEM: csr.pem, allowedID: csr.identity, ttl: 3600)
        _ = try (issued + authority.chain.suffix(1)).map { try $0.serializeAsPEM().pemString }
        count += 1
    }
    return Double(count) / seconds(clock.now - start)
}

/// The stock IstioCAClient (new key, CSR and connection per call), sequentially.
func signWithIstioCAClient(port: Int, cluster: Cluster, duration: Duration) async -> (rate: Double, failed: Int, firstError: String?) {
    let clock = ContinuousClock()
    let start = clock.now
    var count = 0
    var failed = 0
    var firstError: String?
    while clock.now - start < duration, count + failed < 100_000 {
        let pod = (count &* 7907 &+ 11) % (cluster.namespaces * cluster.podsPerNamespace)
        do {
            let node = try NodeCredential.identity(node: "node-\(cluster.node(ofPod: pod))", trustDomain: cluster.trustDomain)
            let identity = try SPIFFEID("spiffe://\(cluster.trustDomain)/ns/ns-\(cluster.namespace(ofPod: pod))/sa/sa-\(cluster.app(ofPod: pod))")
            let client = IstioCAClient(host: "127.0.0.1", port: port, identity: node, bearerToken: "node-token-\(cluster.node(ofPod: pod))",
                                       validitySeconds: 3600, impersonate: identity)
            let svid = try await client.fetchSVID()
            guard svid.id == identity else { throw CSRCheckError(message: "leaf is for \(svid.id), asked \(identity)") }
            count += 1
        } catch {
            failed += 1
            if firstError == nil { firstError = "\(error)" }
        }
    }
    return (Double(count) / seconds(clock.now - start), failed, firstError)
}

func runClient(pods: Int) async throws {
    let cluster = Cluster(pods: pods)
    let clientCount = environment("BENCH_CONTROLPLANE_CLIENTS", default: 100)
    let maxEdits = environment("BENCH_CONTROLPLANE_EDITS", default: 100)
    let editBudget = Double(environment("BENCH_CONTROLPLANE_EDIT_SECONDS", default: 120))
    let csrSeconds = environment("BENCH_CONTROLPLANE_CSR_SECONDS", default: 5)
    let clock = ContinuousClock()

    // Manifests.
    let directory = NSTemporaryDirectory() + "bench-controlplane-\(getpid())"
    try? FileManager.default.removeItem(atPath: directory)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let generating = clock.now
    let written = try cluster.write(to: directory)
    let generated = seconds(clock.now - generating)

    // Baseline: Yams alone over the same files.
    let parse = try parseBaseline(directory: directory)

    // The control plane: cold start in the child.
    let server = try ServerProcess(directory: directory, nodes: cluster.nodes)
    defer { server.stop() }
    guard let coldLine = await server.lines.next(within: .seconds(1800)) else { fail("the control plane did not start within 30 minutes") }
    guard coldLine.hasPrefix("COLDSTART ") else { fail("the control plane did not start: \(coldLine)") }
    let cold = coldLine.split(separator: " ").dropFirst().map { Double($0) ?? 0 }
    let coldLoad = cold[0], coldConvert = cold[1], coldRSS = cold[2]
    let counts = await server.expect("COUNTS")
    let port = Int(await server.expect("LISTENING")[0]) ?? 0
    var served: [String: Int] = [:]
    for entry in counts {
        let parts = entry.split(separator: "=")
        if parts.count == 2 { served[String(parts[0].split(separator: ".").last ?? parts[0])] = Int(parts[1]) ?? 0 }
    }
    let podCount = cluster.namespaces * cluster.podsPerNamespace
    let expected = (workloads: podCount, services: cluster.services, policies: served["Authorization"] ?? 0)
    guard served["Address"] == podCount + cluster.services else {
        fail("the control plane serves \(served["Address"] ?? 0) Addresses, expected \(podCount + cluster.services)")
    }
    // A full rebuild is the unit of every edit; allow a generous multiple of it.
    let perEdit = Duration.seconds(max(60, Int(4 * (coldLoad + coldConvert))))

    let tracker = EditTracker()

    // Initial push: the decode floor, one client (baseline), then all of them at once.
    let floor = try decodeFloor(directory: directory)
    let single = try await initialPush(count: 1, port: port, cluster: cluster, expected: expected, tracker: tracker, limit: .seconds(120))
    await stopClients(single.clients)
    let cpuBefore = Double(await server.ask("cpu", "CPU")[0]) ?? 0
    let fleet = try await initialPush(count: clientCount, port: port, cluster: cluster, expected: expected, tracker: tracker, limit: .seconds(300))
    let cpuAfter = Double(await server.ask("cpu", "CPU")[0]) ?? 0
    let pushed = await server.ask("rss", "RSS").map { Double($0) ?? 0 }

    // CSRs: over gRPC to the control plane, then the in-process floor, then the stock client.
    let csrs = try makeCSRs(cluster: cluster, count: 64)
    let grpc = try await signOverGRPC(port: port, csrs: csrs, workers: 8, duration: .seconds(csrSeconds))
    let local = try signInProcess(csrs: csrs, duration: .seconds(max(1, csrSeconds / 2)))
    let stock = await signWithIstioCAClient(port: port, cluster: cluster, duration: .seconds(2))

    // Edits: apply(source.load()) right after the write, then DirectoryClusterSource watching.
    let direct = await measureEdits(mode: true, first: 0, maximum: maxEdits, budget: editBudget, perEdit: perEdit,
                                    directory: directory, cluster: cluster, clients: clientCount, tracker: tracker, server: server)
    let watchStart = Double(await server.ask("watch", "WATCHING", within: perEdit)[0]) ?? 0
    let idleBefore = Double(await server.ask("cpu", "CPU")[0]) ?? 0
    let idleStart = clock.now
    try await Task.sleep(for: .seconds(2))
    let idleAfter = Double(await server.ask("cpu", "CPU")[0]) ?? 0
    let idleShare = (idleAfter - idleBefore) / seconds(clock.now - idleStart)
    let watched = await measureEdits(mode: false, first: direct.latencies.count + direct.timeouts, maximum: maxEdits, budget: editBudget,
                                     perEdit: perEdit, directory: directory, cluster: cluster, clients: clientCount, tracker: tracker, server: server)

    // Cross-checks: the server's view of the streams, the clients' counters, final memory.
    // The last ACKs may still be on their way once the watches have seen the edit.
    var status = await server.ask("status", "STATUS").map { Int($0) ?? 0 }
    for _ in 0..<100 where status[1] != clientCount {
        try await Task.sleep(for: .milliseconds(50))
        status = await server.ask("status", "STATUS").map { Int($0) ?? 0 }
    }
    let ending = await server.ask("rss", "RSS").map { Double($0) ?? 0 }
    let counters = fleet.clients.map { $0.client.counters }
    await stopClients(fleet.clients)

    // Report.
    func ms(_ s: Double) -> String { s.isNaN ? "n/a" : String(format: "%.0f ms", s * 1000) }
    func s2(_ s: Double) -> String { String(format: "%.2f s", s) }
    func mb(_ bytes: Double) -> String { String(format: "%.0f MB", bytes / 1e6) }
    func ratio(_ x: Double) -> String { String(format: "%.1fx", x) }
    let coldTotal = coldLoad + coldConvert
    let shortNames = ["Address": "address", "Authorization": "authorization", "Cluster": "cluster", "ClusterLoadAssignment": "endpoints",
                      "Listener": "listener", "RouteConfiguration": "route"]
    print("cluster                       \(podCount) pods on \(cluster.nodes) nodes, \(cluster.namespaces) namespaces, \(cluster.services) Services, \(cluster.authorizationPolicies) AuthorizationPolicies, \(cluster.networkPolicies) NetworkPolicies, \(cluster.serviceAccounts) ServiceAccounts")
    print("manifests                     \(written.files) files, \(String(format: "%.1f", Double(written.bytes) / 1e6)) MB (one per pod, one per namespace, nodes.yaml); \(parse.documents) documents; generated in \(s2(generated))")
    print("setup                         control plane in a child process (ControlPlane + XDSServer with the Istio CA on one port, plaintext on 127.0.0.1); \(clientCount) delta ADS clients and the CSR clients in this process")
    print("resources served              " + served.sorted { $0.key < $1.key }.map { "\(shortNames[$0.key] ?? $0.key) \($0.value)" }.joined(separator: ", "))
    print("cold start                    \(s2(coldTotal))   (read+decode+validate \(s2(coldLoad)), convert+first snapshot \(s2(coldConvert)); ClusterManifestLoader + ControlPlane.apply in the control plane process)")
    print("baseline: read + Yams parse   \(s2(parse.seconds))   (the same files, Yams.Parser.nextRoot on every document, no decoding)")
    print("ratio cold start / baseline   \(ratio(coldTotal / parse.seconds))")
    print("control plane RSS             \(mb(coldRSS)) after cold start, \(mb(pushed[0])) with \(clientCount) clients synced, \(mb(ending[0])) at the end; peak (VmHWM) \(mb(ending[1]))   (target <= 300 MB)")
    print("initial push, 1 client        \(s2(single.seconds))   (delta ADS, Address + Authorization into a WorkloadStore, as bench-xds)")
    print("initial push, \(clientCount) clients     \(s2(fleet.seconds))   (\(fleet.complete)/\(clientCount) complete; all started at once; target <= 2 s)")
    print("baseline: decode floor        \(String(format: "%.3f", floor)) CPU-s per client   (the same resources' wire bytes decoded and unpacked with SwiftProtobuf alone, no store; x \(clientCount) clients / \(ProcessInfo.processInfo.activeProcessorCount) cores = \(s2(floor * Double(clientCount) / Double(ProcessInfo.processInfo.activeProcessorCount))) before any other work)")
    print("ratio \(clientCount) clients / 1 client  \(ratio(fleet.seconds / single.seconds))   (control plane CPU during the push \(s2(cpuAfter - cpuBefore)); clients and control plane share \(ProcessInfo.processInfo.activeProcessorCount) cores)")
    print("CSRs signed over gRPC         \(String(format: "%.0f", grpc.rate))/s   (\(grpc.signed) in \(csrSeconds) s, 8 connections x 1 in flight, node token + ImpersonatedIdentity, ECDSA P-256; latency p50 \(String(format: "%.1f", percentile(grpc.latencies, 0.5) * 1000)) ms p99 \(String(format: "%.1f", percentile(grpc.latencies, 0.99) * 1000)) ms; \(grpc.failed) failed\(grpc.firstError.map { ": " + $0 } ?? ""))   (target >= 500/s)")
    print("baseline: in-process signing  \(String(format: "%.0f", local))/s   (CertificateAuthority.issue(csrPEM:) + PEM chain, one thread)")
    print("ratio gRPC / in-process       \(String(format: "%.2fx", grpc.rate / local))")
    print("IstioCAClient.fetchSVID       \(String(format: "%.0f", stock.rate))/s   (sequential; new key, CSR and connection per call; \(stock.failed) failed\(stock.firstError.map { ": " + $0 } ?? ""))")
    for (name, result) in [("edit, apply(source.load())", direct), ("edit, DirectoryClusterSource", watched)] {
        let count = result.latencies.count
        var line = "\(name.padding(toLength: 30, withPad: " ", startingAt: 0))p50 \(ms(percentile(result.latencies, 0.5)))  p99 \(ms(percentile(result.latencies, 0.99)))  max \(ms(result.latencies.max() ?? .nan))"
        line += "   (\(count) of \(maxEdits) edits in \(String(format: "%.0f", result.elapsed)) s, budget \(String(format: "%.0f", editBudget)) s; \(result.timeouts) timed out"
        if !result.loads.isEmpty { line += "; per edit: load p50 \(ms(percentile(result.loads, 0.5))), apply p50 \(ms(percentile(result.applies, 0.5)))" }
        line += ")"
        print(line)
    }
    print("  edit = rewrite one pod file (label authz \"on\" -> \"off\", so its Address drops its AuthorizationPolicy), until all \(clientCount) clients' watches saw it; the first mode sends `reload` after the write and the control plane calls apply(source.load()), the second runs ControlPlane.run(source:) over DirectoryClusterSource (inotify, read once quiet for 20 ms; its first full read took \(s2(watchStart)))   (target p99 <= 100 ms)")
    print("DirectoryClusterSource idle   \(String(format: "%.0f", idleShare * 100))% of a core while watching \(written.files) files with no change")
    print("server streams                \(status[0]) connected, \(status[1]) synced on every type, \(status[2]) with a NACK; CA: \(status[3]) CSRs, \(status[4]) issued, \(status[5]) impersonation refusals, \(status[6]) CSR refusals")
    print("client counters               \(counters.map(\.streams).reduce(0, +)) streams, \(counters.map(\.responses).reduce(0, +)) responses, \(counters.map(\.acks).reduce(0, +)) ACKs, \(counters.map(\.nacks).reduce(0, +)) NACKs over \(clientCount) clients")
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "server" {
    guard arguments.count == 3, let nodes = Int(arguments[2]) else { fail("usage: bench-controlplane server DIR NODES") }
    try await runServer(directory: arguments[1], nodes: nodes)
} else {
    try await runClient(pods: Int(arguments.first ?? "") ?? 10_000)
}
