// bench-policy: L4 decisions per second of the compiled PolicySet versus a
// naive linear evaluator, over 10,000 AuthorizationPolicies x 10 rules and
// 1,000 workloads (the size of ztunnel's own RBAC benchmark). Both run on one
// thread in this process; the ratio is what matters.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PolicyEngine

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// glibc's malloc_trim(0), looked up at run time (the Glibc module does not export it).
func trimHeap() {
    #if canImport(Glibc)
    typealias Trim = @convention(c) (Int) -> Int32
    if let symbol = dlsym(nil, "malloc_trim") { _ = unsafeBitCast(symbol, to: Trim.self)(0) }
    #endif
}

/// CPU time consumed by this thread, so that other processes competing for
/// the core do not count against either evaluator.
func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func runBenchmark() throws {
    let args = CommandLine.arguments
    let policyCount = args.count > 1 ? Int(args[1]) ?? 10_000 : 10_000
    let rulesPerPolicy = 10
    let namespaceCount = 100
    let appsPerNamespace = 10
    let ports: [UInt16] = [80, 443, 8080, 8443, 9090, 3306, 5432, 6379, 15000, 50051]

    var rng = SplitMix64(state: 0x5EED_0F_9011C7)
    func pick<T>(_ a: [T]) -> T { a[Int.random(in: 0..<a.count, using: &rng)] }

    // 1,000 workloads: 100 namespaces x 10 apps, one service account per app.
    var workloads: [Workload] = []
    for n in 0..<namespaceCount {
        for a in 0..<appsPerNamespace {
            workloads.append(Workload(namespace: "ns-\(n)", name: "app-\(a)-0", labels: ["app": "app-\(a)", "ver": "v1"],
                                      serviceAccount: "sa-\(a)",
                                      addresses: [IPAddress(v4: 0x0A00_0000 | UInt32(n) << 8 | UInt32(a + 1))]))
        }
    }
    let principals = workloads.map { $0.principal(trustDomain: "cluster.local") }

    // 10,000 policies: 100 per namespace, each selecting one app (10 policies and
    // 100 rules per workload), 10% DENY. Rules combine the L4 attributes ztunnel
    // evaluates: principals (exact and prefix), namespaces, ipBlocks, ports,
    // notPorts and when conditions.
    var policies: [AuthorizationPolicy] = []
    for i in 0..<policyCount {
        let ns = i % namespaceCount
        var rules: [AuthorizationPolicy.Rule] = []
        for _ in 0..<rulesPerPolicy {
            var rule = AuthorizationPolicy.Rule()
            var source = AuthorizationPolicy.Source()
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5: source.principals = [pick(principals), pick(principals)]
            case 5..<7: source.namespaces = ["ns-\(Int.random(in: 0..<namespaceCount, using: &rng))"]
            case 7: source.principals = ["cluster.local/ns/ns-\(Int.random(in: 0..<namespaceCount, using: &rng))/*"]
            case 8: source.ipBlocks = [CIDR(address: IPAddress(v4: 0x0A00_0000 | UInt32(Int.random(in: 0..<namespaceCount, using: &rng)) << 8), prefixLength: 24)]
            default: source.notNamespaces = ["ns-\(ns)"]
            }
            rule.from = [source]
            var op = AuthorizationPolicy.Operation()
            if Int.random(in: 0..<8, using: &rng) == 0 { op.notPorts = [pick(ports)] } else { op.ports = [pick(ports)] }
            rule.to = [op]
            if Int.random(in: 0..<5, using: &rng) == 0 {
                rule.when = [AuthorizationPolicy.Condition(key: "source.ip", notValues: ["10.0.\(Int.random(in: 0..<namespaceCount, using: &rng)).0/24"])]
            }
            rules.append(rule)
        }
        policies.append(AuthorizationPolicy(namespace: "ns-\(ns)", name: "policy-\(i)",
                                            selector: ["app": "app-\((i / namespaceCount) % appsPerNamespace)"],
                                            action: i % 10 == 9 ? .deny : .allow, rules: rules))
    }

    // Traffic: half crafted to match a rule of a policy on the destination, half random.
    var connections: [(Connection, Workload)] = []
    let byPrincipal = Dictionary(uniqueKeysWithValues: zip(principals, workloads))
    for _ in 0..<100_000 {
        let dst = pick(workloads)
        var src = pick(workloads)
        var port = pick(ports)
        if Bool.random(using: &rng) {
            let candidates = policies.filter { $0.namespace == dst.namespace && $0.selector?["app"] == dst.labels["app"] }
            if let p = candidates.randomElement(using: &rng), let r = p.rules?.randomElement(using: &rng) {
                if let pr = r.from.first?.principals.first, let w = byPrincipal[pr] { src = w }
                if let pp = r.to.first?.ports.first { port = pp }
            }
        }
        connections.append((Connection.mesh(from: src, to: dst, port: port), dst))
    }

    trimHeap()
    let rssBefore = residentBytes()
    let compileStart = ContinuousClock.now
    let set = try PolicySet(inventory: Inventory(workloads: workloads), authorizationPolicies: policies)
    let compileTime = ContinuousClock.now - compileStart
    trimHeap()  // return compilation temporaries to the OS so the delta is what the set keeps
    let rssAfter = residentBytes()
    let naive = NaiveAuthorizationEvaluator(policies: policies)

    // Agreement check on a sample, so the speed comparison compares equals.
    var mismatches = 0
    var allowedSample = 0
    for (c, dst) in connections.prefix(2_000) {
        let a = set.decide(c).verdict
        if a != naive.decide(c, destination: dst) { mismatches += 1 }
        if a == .allow { allowedSample += 1 }
    }

    let connectionList = connections.map(\.0)
    let destinationList = connections.map(\.1)
    func measure(iterations: Int, _ body: (borrowing Connection, borrowing Workload) -> Bool) -> (rate: Double, wallRate: Double, allowed: Int) {
        connectionList.withUnsafeBufferPointer { cs in
            destinationList.withUnsafeBufferPointer { ds in
                var allowed = 0
                let start = threadCPUSeconds()
                let wallStart = ContinuousClock.now
                var i = 0, k = 0
                while i < iterations {
                    if body(cs[k], ds[k]) { allowed += 1 }
                    i += 1
                    k += 1
                    if k == cs.count { k = 0 }
                }
                let cpu = threadCPUSeconds() - start
                return (Double(iterations) / cpu, Double(iterations) / seconds(ContinuousClock.now - wallStart), allowed)
            }
        }
    }

    _ = measure(iterations: 200_000) { c, _ in set.decide(c).isAllowed }  // warm-up
    let compiled = measure(iterations: 3_000_000) { c, _ in set.decide(c).isAllowed }
    let baseline = measure(iterations: 3_000) { c, d in naive.decide(c, destination: d) == .allow }

    func fmt(_ x: Double) -> String { String(format: "%.0f", x) }
    print("policies                 \(policies.count) AuthorizationPolicies x \(rulesPerPolicy) rules (\(policies.filter { $0.action == .deny }.count) DENY)")
    print("workloads                \(workloads.count) (\(namespaceCount) namespaces)")
    print("compile time             \(String(format: "%.2f", seconds(compileTime))) s")
    print("compiled set memory      \(String(format: "%.1f", Double(rssAfter - rssBefore) / 1_048_576)) MiB (RSS delta across compilation, after malloc_trim)")
    print("verdict agreement        \(2_000 - mismatches)/2000 sampled connections agree with the naive evaluator (\(allowedSample) allowed)")
    print("compiled engine          \(fmt(compiled.rate)) L4 decisions per CPU-second, \(fmt(compiled.wallRate))/s wall clock (one thread, \(compiled.allowed) of 3000000 allowed)")
    print("naive linear evaluator   \(fmt(baseline.rate)) L4 decisions per CPU-second, \(fmt(baseline.wallRate))/s wall clock (one thread)")
    print("speed-up                 \(String(format: "%.0f", compiled.rate / baseline.rate))x (CPU time)")
    if mismatches > 0 { exit(1) }
}

try runBenchmark()
