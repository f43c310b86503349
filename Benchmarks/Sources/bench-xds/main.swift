// bench-xds: 100,000 Istio workloads pushed by XDSServer (a child process)
// and applied by XDSClient into a WorkloadStore over delta ADS; the client's
// RSS per workload; one incremental update's latency in the full store.
// Baseline, same run: decoding the same resources from one in-memory
// DeltaDiscoveryResponse and applying them to a store, with no network.
//
// Usage: bench-xds [WORKLOADS]            (client; spawns the server)
//        bench-xds server WORKLOADS        (internal)
// BENCH_XDS_MALLOC=1 prints glibc's malloc_stats() at each RSS measurement
// (live bytes versus what the heap holds from the kernel).
import Foundation
import MeshProto
import SwiftProtobuf
import XDSClient
import XDSServer

enum Fixture {
    static func workload(_ index: Int, generation: Int = 0) -> Istio_Workload_Address {
        let namespace = "ns-\(index % 100)"
        var workload = Istio_Workload_Workload()
        workload.uid = "Kubernetes//Pod/\(namespace)/pod-\(index)"
        workload.name = "pod-\(index)"
        workload.namespace = namespace
        workload.serviceAccount = "sa-\(index % 1000)"
        workload.trustDomain = "cluster.local"
        workload.addresses = [Data([10, UInt8((index >> 16) & 0xff), UInt8((index >> 8) & 0xff), UInt8(index & 0xff) &+ UInt8(generation)])]
        workload.network = ""
        workload.node = "node-\(index % 100)"
        workload.tunnelProtocol = .hbone
        workload.canonicalName = "app-\(index % 5000)"
        workload.canonicalRevision = "v1"
        workload.workloadName = "app-\(index % 5000)"
        workload.clusterID = "Kubernetes"
        var port = Istio_Workload_Port()
        port.servicePort = 80
        port.targetPort = 8080
        var ports = Istio_Workload_PortList()
        ports.ports = [port]
        workload.services = ["\(namespace)/app-\(index % 5000).\(namespace).svc.cluster.local": ports]
        var address = Istio_Workload_Address()
        address.workload = workload
        return address
    }

    static func resources(_ count: Int) throws -> [XDSResource] {
        try (0..<count).map { index in
            try XDSResource(name: "Kubernetes//Pod/ns-\(index % 100)/pod-\(index)", message: workload(index))
        }
    }
}

func rssBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (Int(fields.count > 1 ? fields[1] : "0") ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// glibc's malloc_trim (not in the Glibc module map): returns freed heap pages to the kernel.
@_silgen_name("malloc_trim")
func mallocTrim(_ pad: Int) -> Int32

@_silgen_name("malloc_stats")
func mallocStats()

func trimmedRSS() -> Int {
    _ = mallocTrim(0)
    return rssBytes()
}

/// A line on stdout, unbuffered (the parent reads it through a pipe).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func waitUntil(_ condition: () -> Bool) async {
    while !condition() { try? await Task.sleep(for: .microseconds(200)) }
}

// MARK: Server role

func runServer(count: Int) async throws {
    let server = XDSServer(cache: XDSSnapshotCache(), configuration: .init(host: "127.0.0.1", port: 0))
    await server.cache.setSnapshot(try XDSSnapshot(Fixture.resources(count)), forNode: "bench-node")
    async let serving: Void = server.run()
    emit("LISTENING \(try await server.listeningPort())")
    var generation = 1
    while let line = readLine() {
        let words = line.split(separator: " ")
        if words.first == "update", words.count == 2, let index = Int(words[1]) {
            let moved = Fixture.workload(index, generation: generation)
            generation += 1
            try await server.cache.updateSnapshot(forNode: "bench-node", upserting: [
                XDSResource(name: moved.workload.uid, message: moved),
            ])
            emit("UPDATED \(index)")
        } else if line == "quit" {
            break
        }
    }
    server.shutdown()
    try await serving
}

// MARK: Client role

final class ServerProcess {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    var buffered = Data()

    init(count: Int) throws {
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["server", String(count)]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    func line() -> String {
        while true {
            if let newline = buffered.firstIndex(of: 0x0a) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return "" }
            buffered.append(chunk)
        }
    }

    func send(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }

    func stop() {
        send("quit")
        process.waitUntilExit()
    }
}

func baseline(count: Int) throws -> (seconds: Double, wireBytes: Int, storeBytes: Int) {
    var response = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse()
    response.typeURL = XDSResourceType.meshAddress.typeURL
    response.resources = try Fixture.resources(count).map(\.deltaResource)
    let bytes: Data = try response.serializedBytes()
    response = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse()
    let rssBefore = trimmedRSS()
    let store = try WorkloadStore()
    let clock = ContinuousClock()
    let start = clock.now
    let decoded = try Envoy_Service_Discovery_V3_DeltaDiscoveryResponse(serializedBytes: bytes)
    var change = WorkloadStoreChange()
    for resource in decoded.resources {
        let address = try MeshAddress(Istio_Workload_Address(serializedBytes: resource.resource.value))
        if case .workload(let workload) = address { change.upsertedWorkloads.append(workload) }
    }
    store.update(change)
    let elapsed = clock.now - start
    change = WorkloadStoreChange()
    precondition(store.counts.workloads == count)
    let storeBytes = trimmedRSS() - rssBefore
    return (seconds(elapsed), bytes.count, storeBytes)
}

/// Runs the ADS client into `store`: the initial push, RSS, then incremental updates. The client is released on return.
func measureADS(count: Int, port: Int, store: WorkloadStore, server: ServerProcess) async throws
    -> (initial: Double, rssRaw: Int, rssAfter: Int, latencies: [Double], counters: ADSClient.Counters)
{
    let clock = ContinuousClock()
    let client = ADSClient(configuration: .init(host: "127.0.0.1", port: port, variant: .delta, node: XDSNode.named("bench-node")))
    let sync = WorkloadStoreSync(client: client, store: store)
    let start = clock.now
    let syncing = Task { await sync.run() }
    let running = Task { await client.run() }
    await waitUntil { store.counts.workloads == count }
    let initial = seconds(clock.now - start)

    var latencies: [Double] = []
    for round in 0..<50 {
        let index = (round * 7919) % count
        let uid = "Kubernetes//Pod/ns-\(index % 100)/pod-\(index)"
        let before = store.workload(uid: uid)?.workloadIPs
        let sent = clock.now
        server.send("update \(index)")
        await waitUntil { store.workload(uid: uid)?.workloadIPs != before }
        latencies.append(seconds(clock.now - sent))
        _ = server.line()
    }
    // Steady state: the initial push and every update have been applied and released.
    let rssRaw = rssBytes()
    let rssAfter = trimmedRSS()
    if ProcessInfo.processInfo.environment["BENCH_XDS_MALLOC"] != nil { FileHandle.standardError.write(Data("== steady state\n".utf8)); mallocStats() }
    client.shutdown()
    await running.value
    await syncing.value
    return (initial, rssRaw, rssAfter, latencies, client.counters)
}

func runClient(count: Int) async throws {
    let server = try ServerProcess(count: count)
    defer { server.stop() }
    let listening = server.line()
    guard listening.hasPrefix("LISTENING "), let port = Int(listening.dropFirst("LISTENING ".count)) else {
        fatalError("bench-xds: server did not start: \(listening)")
    }

    let rssBefore = trimmedRSS()
    if ProcessInfo.processInfo.environment["BENCH_XDS_MALLOC"] != nil { FileHandle.standardError.write(Data("== before\n".utf8)); mallocStats() }
    let store = try WorkloadStore()
    let measured = try await measureADS(count: count, port: port, store: store, server: server)
    // The client and its cache are gone; what stays is the store.
    let rssStoreOnly = trimmedRSS()
    if ProcessInfo.processInfo.environment["BENCH_XDS_MALLOC"] != nil { FileHandle.standardError.write(Data("== store only\n".utf8)); mallocStats() }

    let floor = try baseline(count: count)
    let latencies = measured.latencies.sorted()
    let initial = measured.initial
    let perWorkload = Double(measured.rssAfter - rssBefore) / Double(count)
    func ms(_ s: Double) -> String { String(format: "%.1f ms", s * 1000) }
    print("workloads                     \(count)")
    print("initial push over delta ADS   \(String(format: "%.2f s", initial))   (target <= 2 s)")
    print("baseline: decode+apply only   \(String(format: "%.2f s", floor.seconds))   (same resources from one in-memory response, no network)")
    print("ratio ADS / baseline          \(String(format: "%.2fx", initial / floor.seconds))")
    print("client RSS per workload       \(String(format: "%.0f B", perWorkload)) after malloc_trim, \(String(format: "%.0f B", Double(measured.rssRaw - rssBefore) / Double(count))) before, in steady state after the updates   (target <= 2048 B)")
    print("  of which the WorkloadStore  \(String(format: "%.0f B", Double(rssStoreOnly - rssBefore) / Double(count))) (RSS once the client is released)")
    print("baseline store alone          \(floor.storeBytes / count) B per workload (WorkloadStore without the ADS client)")
    print("wire size per workload        \(floor.wireBytes / count) B (the Resource in the delta response)")
    print("incremental update, 100k store  p50 \(ms(latencies[latencies.count / 2]))  p99 \(ms(latencies[latencies.count * 99 / 100]))  (\(latencies.count) updates: server snapshot change -> push -> NACK/ACK path -> store)")
    print("client counters               \(measured.counters)")
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "server" {
    try await runServer(count: Int(arguments.dropFirst().first ?? "") ?? 100_000)
} else {
    try await runClient(count: Int(arguments.first ?? "") ?? 100_000)
}
