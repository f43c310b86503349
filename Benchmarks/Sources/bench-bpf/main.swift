// bench-bpf: single and batch operations on a kernel hash map through
// BPFMaps, against a C program calling libbpf directly (Benchmarks/c/bpf_baseline.c)
// measured in the same run. Run through `scripts/bench bpf`, which builds the
// baseline and passes its path as the first argument.
//
// Each measurement: 10,000 keys (UInt32 -> UInt64, BPF_MAP_TYPE_HASH), repeated
// 20 times, best of 5 rounds; Swift and C rounds are interleaved in pairs so
// that both see the same machine load.
import BPFMaps
import Foundation

let entries = 10_000
let repeatCount = 20
let rounds = 5

struct Figures {
    var updateSingle = Double.infinity
    var lookupSingle = Double.infinity
    var updateBatch = Double.infinity
    var lookupBatch = Double.infinity

    mutating func keepBest(_ other: Figures) {
        updateSingle = min(updateSingle, other.updateSingle)
        lookupSingle = min(lookupSingle, other.lookupSingle)
        updateBatch = min(updateBatch, other.updateBatch)
        lookupBatch = min(lookupBatch, other.lookupBatch)
    }
}

func nanoseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start)
}

func swiftRound(_ map: BPFMap) throws -> Figures {
    let ops = Double(entries * repeatCount)
    var sink: UInt64 = 0
    var f = Figures()
    f.updateSingle = try nanoseconds {
        for r in 0..<repeatCount {
            for k in 0..<entries { try map.update(UInt32(k), UInt64(k + r)) }
        }
    } / ops
    f.lookupSingle = try nanoseconds {
        for _ in 0..<repeatCount {
            for k in 0..<entries { sink &+= try map.lookup(UInt32(k), as: UInt64.self) ?? 0 }
        }
    } / ops
    let batch = (0..<entries).map { (key: UInt32($0), value: UInt64($0) << 32) }
    f.updateBatch = try nanoseconds {
        for _ in 0..<repeatCount { try map.updateBatch(batch) }
    } / ops
    f.lookupBatch = try nanoseconds {
        for _ in 0..<repeatCount { sink &+= UInt64(try map.lookupBatch(key: UInt32.self, value: UInt64.self, chunkSize: entries).entries.count) }
    } / ops
    if sink == 42 { print("") } // keep the lookups observable
    return f
}

func cRound(_ path: String) throws -> Figures {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw BenchError.baselineFailed(p.terminationStatus) }
    var values: [String: Double] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        let parts = line.split(separator: " ")
        if parts.count == 2, let v = Double(parts[1]) { values[String(parts[0])] = v }
    }
    return Figures(updateSingle: values["update_single"] ?? .nan, lookupSingle: values["lookup_single"] ?? .nan,
                   updateBatch: values["update_batch"] ?? .nan, lookupBatch: values["lookup_batch"] ?? .nan)
}

enum BenchError: Error { case usage, baselineFailed(Int32) }

func fmt(_ v: Double, _ width: Int = 10) -> String {
    let s = String(format: "%.1f", v)
    return String(repeating: " ", count: max(0, width - s.count)) + s
}

do {
    guard CommandLine.arguments.count >= 2 else {
        FileHandle.standardError.write(Data("usage: bench-bpf PATH-TO-bpf_baseline\n".utf8))
        throw BenchError.usage
    }
    let baseline = CommandLine.arguments[1]
    let map = try BPFMap.create(MapSpec(name: "bench_swift", type: .hash, key: UInt32.self, value: UInt64.self, maxEntries: UInt32(entries)))
    defer { map.close() }
    var swift = Figures()
    var c = Figures()
    for _ in 0..<rounds {
        // cRound runs its own 5 rounds and reports its best; interleaving keeps load comparable.
        c.keepBest(try cRound(baseline))
        swift.keepBest(try swiftRound(map))
    }
    print("BPF map operations, hash map UInt32 -> UInt64, \(entries) entries x \(repeatCount), best of \(rounds) rounds (ns per element; lower is better)")
    print("operation            C libbpf   BPFMaps   BPFMaps/C   ops/s (BPFMaps)")
    for (name, cv, sv) in [("update (single)", c.updateSingle, swift.updateSingle),
                           ("lookup (single)", c.lookupSingle, swift.lookupSingle),
                           ("update (batch)", c.updateBatch, swift.updateBatch),
                           ("lookup (batch)", c.lookupBatch, swift.lookupBatch)] {
        print(name.padding(toLength: 18, withPad: " ", startingAt: 0) + fmt(cv) + fmt(sv) + String(format: "%10.2fx", sv / cv) + fmt(1e9 / sv, 14))
    }
    print(String(format: "batch vs single (BPFMaps, %d entries): update %.1fx, lookup %.1fx faster", entries,
                 swift.updateSingle / swift.updateBatch, swift.lookupSingle / swift.lookupBatch))
    print(String(format: "batch vs single (C): update %.1fx, lookup %.1fx faster",
                 c.updateSingle / c.updateBatch, c.lookupSingle / c.lookupBatch))
    print("targets: BPFMaps within 1.1x of C per operation; batch >= 5x faster than single operations")
} catch {
    FileHandle.standardError.write(Data("bench-bpf: \(error)\n".utf8))
    exit(1)
}
