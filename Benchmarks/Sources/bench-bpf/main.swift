// bench-bpf: single and batch operations on kernel BPF maps through BPFMaps,
// against a C program calling libbpf directly (Benchmarks/c/bpf_baseline.c)
// measured in the same run. Run through `scripts/bench bpf`, which builds the
// baseline and passes its path as the first argument; an optional second
// argument is the number of rounds (default 15).
//
// Per map type (hash, hash with BPF_F_NO_PREALLOC, LRU hash, array): 10,000
// UInt32 -> UInt64 entries; each round creates a fresh map, fills it untimed,
// then times REPEAT x 10,000 single updates (overwrites), single lookups, one
// update batch of all 10,000 entries and one full lookup batch — exactly what
// the C baseline does in one run. Rounds are interleaved (C, Swift, then
// Swift, C, ...) so that load from other processes falls on both sides alike;
// the report gives medians, min-max spread and the per-round BPFMaps/C ratio.
import BPFMaps
import Foundation

let entries = 10_000
let repeatCount = 10 // must match REPEAT in bpf_baseline.c

/// One map type of the benchmark, with the same name as bpf_baseline's argument.
struct Variant {
    var label: String
    var cArguments: [String]
    var spec: MapSpec
}

let lruCapacity = UInt32(entries + entries / 4) // a full LRU map evicts: 25% headroom, as in the C baseline
let variants: [Variant] = [
    Variant(label: "hash (preallocated)", cArguments: ["hash", "0"],
            spec: MapSpec(name: "bench_hash", type: .hash, key: UInt32.self, value: UInt64.self, maxEntries: UInt32(entries))),
    Variant(label: "hash (BPF_F_NO_PREALLOC)", cArguments: ["hash", "1"],
            spec: MapSpec(name: "bench_hash_np", type: .hash, key: UInt32.self, value: UInt64.self, maxEntries: UInt32(entries), flags: .noPrealloc)),
    Variant(label: "LRU hash (capacity \(lruCapacity))", cArguments: ["lru_hash", "0"],
            spec: MapSpec(name: "bench_lru", type: .lruHash, key: UInt32.self, value: UInt64.self, maxEntries: lruCapacity)),
    Variant(label: "array", cArguments: ["array", "0"],
            spec: MapSpec(name: "bench_array", type: .array, key: UInt32.self, value: UInt64.self, maxEntries: UInt32(entries))),
]

let operations = ["update_single", "lookup_single", "update_batch", "lookup_batch"]
let operationLabels = ["update (single)", "lookup (single)", "update (batch)", "lookup (batch)"]

enum BenchError: Error { case usage, baselineFailed(String, Int32), missing(String), wrongCount(Int) }

func nanoseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start)
}

/// One round through BPFMaps: ns per element for each operation.
func swiftRound(_ variant: Variant) throws -> [String: Double] {
    let map = try BPFMap.create(variant.spec)
    defer { map.close() }
    for k in 0..<entries { try map.update(UInt32(k), UInt64(k) << 32) } // fill, untimed
    let ops = Double(entries * repeatCount)
    var sink: UInt64 = 0
    var f: [String: Double] = [:]
    f["update_single"] = try nanoseconds {
        for r in 0..<repeatCount {
            for k in 0..<entries { try map.update(UInt32(k), UInt64(k + r)) }
        }
    } / ops
    f["lookup_single"] = try nanoseconds {
        for _ in 0..<repeatCount {
            for k in 0..<entries { sink &+= try map.lookup(UInt32(k), as: UInt64.self) ?? 0 }
        }
    } / ops
    let batch = (0..<entries).map { (key: UInt32($0), value: UInt64($0) << 32) }
    f["update_batch"] = try nanoseconds {
        for _ in 0..<repeatCount { try map.updateBatch(batch) }
    } / ops
    var count = 0
    f["lookup_batch"] = try nanoseconds {
        for _ in 0..<repeatCount {
            let all = try map.lookupBatch(key: UInt32.self, value: UInt64.self, chunkSize: entries).entries
            count = all.count
            sink &+= all.last?.value ?? 0
        }
    } / ops
    guard count == entries else { throw BenchError.wrongCount(count) }
    if sink == 42 { print("") } // keep the lookups observable
    return f
}

/// One round of the C baseline (one process run).
///
/// Spawned with posix_spawn rather than Foundation's Process, whose monitoring
/// thread would make this process multi-threaded: the kernel then takes a file
/// reference on every bpf() call (fdget on a shared descriptor table), which
/// costs ~30 ns per call here, while the single-threaded C program skips it.
/// Both sides stay single-threaded; `threadCount()` is printed to show it.
func cRound(_ path: String, _ variant: Variant) throws -> [String: Double] {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw BenchError.baselineFailed("pipe", errno) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    let argv = ([path] + variant.cArguments).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
    close(fds[1])
    guard rc == 0 else { close(fds[0]); throw BenchError.baselineFailed(path, rc) }
    var data = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fds[0], &buffer, buffer.count)
        if n > 0 { data += buffer[0..<n] } else if n == 0 || errno != EINTR { break }
    }
    close(fds[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else { throw BenchError.baselineFailed(variant.cArguments.joined(separator: " "), status) }
    var values: [String: Double] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        let parts = line.split(separator: " ")
        if parts.count == 2, let v = Double(parts[1]) { values[String(parts[0])] = v }
    }
    for name in operations where values[name] == nil { throw BenchError.missing(name) }
    return values
}

/// Threads of this process (the C baseline has one).
func threadCount() -> Int {
    guard let dir = opendir("/proc/self/task") else { return -1 }
    defer { closedir(dir) }
    var n = 0
    while let e = readdir(dir) {
        if e.pointee.d_name.0 != UInt8(ascii: ".") { n += 1 }
    }
    return n
}

/// Median and extremes of a sample.
struct Summary {
    var median: Double, min: Double, max: Double
    init(_ xs: [Double]) {
        let s = xs.sorted()
        median = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        min = s.first ?? .nan
        max = s.last ?? .nan
    }
    func ns() -> String { String(format: "%7.1f [%.0f-%.0f]", median, min, max) }
    func ratio() -> String { String(format: "%5.2fx [%.2f-%.2f]", median, min, max) }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

do {
    let args = CommandLine.arguments
    guard args.count >= 2 else {
        FileHandle.standardError.write(Data("usage: bench-bpf PATH-TO-bpf_baseline [ROUNDS]\n".utf8))
        throw BenchError.usage
    }
    let baseline = args[1]
    let rounds = args.count >= 3 ? max(1, Int(args[2]) ?? 15) : 15
    let loadBefore = loadAverage()
    // results[variant][side] = one dictionary per round
    var c = [[[String: Double]]](repeating: [], count: variants.count)
    var swift = c
    for round in 0..<rounds {
        for (i, variant) in variants.enumerated() {
            if round % 2 == 0 {
                c[i].append(try cRound(baseline, variant))
                swift[i].append(try swiftRound(variant))
            } else {
                swift[i].append(try swiftRound(variant))
                c[i].append(try cRound(baseline, variant))
            }
        }
    }
    let loadAfter = loadAverage()
    let threads = threadCount()

    print("BPF map operations, UInt32 -> UInt64, \(entries) entries; single: \(repeatCount) x \(entries) calls, batch: \(repeatCount) x all \(entries) entries")
    print("\(rounds) interleaved rounds (C, BPFMaps, BPFMaps, C, ...), each on a fresh, pre-filled map; ns per element, median [min-max]; lower is better")
    print("load average (1/5/15 min) before: \(loadBefore), after: \(loadAfter)")
    let nullSyscall = Summary(c.flatMap { $0.compactMap { $0["null_syscall"] } })
    print("threads in this process: \(threads) (1 = single-threaded like the C baseline; see cRound)")
    print("a null system call (getppid, from C) costs \(nullSyscall.ns()) ns here: the floor of every single operation")
    var verdicts: [String] = []
    for (i, variant) in variants.enumerated() {
        print("")
        print("\(variant.label); C batch system calls: update \(c[i][0]["update_batch_calls"] ?? .nan), lookup \(c[i][0]["lookup_batch_calls"] ?? .nan)")
        print(pad("operation", 17) + pad("C libbpf", 24) + pad("BPFMaps", 24) + "BPFMaps/C per round")
        var worstRatio = 0.0
        for (name, label) in zip(operations, operationLabels) {
            let cs = c[i].map { $0[name]! }
            let ss = swift[i].map { $0[name]! }
            let ratio = Summary(zip(ss, cs).map { $0 / $1 })
            worstRatio = max(worstRatio, ratio.median)
            print(pad(label, 17) + pad(Summary(cs).ns(), 24) + pad(Summary(ss).ns(), 24) + ratio.ratio())
        }
        func speedup(_ side: [[String: Double]], _ op: String) -> Summary {
            Summary(side.map { $0["\(op)_single"]! / $0["\(op)_batch"]! })
        }
        let cu = speedup(c[i], "update"), cl = speedup(c[i], "lookup")
        let su = speedup(swift[i], "update"), sl = speedup(swift[i], "lookup")
        print("batch vs single   C:       update \(cu.ratio()), lookup \(cl.ratio()) faster")
        print("batch vs single   BPFMaps: update \(su.ratio()), lookup \(sl.ratio()) faster")
        let perOp = worstRatio <= 1.1 ? "met" : "NOT met"
        let batchMet = su.median >= 5 && sl.median >= 5 ? "met" : (su.median >= 5 || sl.median >= 5 ? "met for \(su.median >= 5 ? "update" : "lookup") only" : "NOT met")
        verdicts.append(pad(variant.label, 34) + String(format: "per op <= 1.1x of C: %@ (worst median %.2fx); batch >= 5x: %@ (C itself: update %.1fx, lookup %.1fx)",
                                                          perOp, worstRatio, batchMet, cu.median, cl.median))
    }
    print("")
    print("targets: BPFMaps within 1.1x of C per operation; batch >= 5x faster than single operations (medians)")
    for v in verdicts { print(v) }
} catch {
    FileHandle.standardError.write(Data("bench-bpf: \(error)\n".utf8))
    exit(1)
}
