import FuzzSupport
import MeshIdentity
import XDSClient

// ztunnel's local config (Istio ztunnel's LOCAL_XDS_PATH shape: workloads,
// services, policies in YAML) through LocalConfig.parse, the string entry
// point LocalConfig.load(path:) reads a file into, then into a WorkloadStore
// (which validates addresses and uniqueness) and the lookups and L4
// authorization the data path makes.

private let source = try? SPIFFEID("spiffe://cluster.local/ns/default/sa/client")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = Fuzz.text(Fuzz.bytes(data, size))
    guard let snapshot = try? LocalConfig.parse(text), let store = try? WorkloadStore(snapshot) else { return 0 }
    Fuzz.check(store.snapshot.workloads.count == snapshot.workloads.count, "the store kept \(store.snapshot.workloads.count) of \(snapshot.workloads.count) workloads")
    for workload in snapshot.workloads.prefix(16) {
        Fuzz.check(store.workload(uid: workload.uid) == workload, "workload \(workload.uid) not found by uid")
        for ip in workload.workloadIPs.prefix(4) {
            Fuzz.check(store.workload(address: ip, network: workload.network)?.uid == workload.uid, "workload \(workload.uid) not found by \(ip)")
        }
        _ = try? workload.identity()
        let ports: [UInt16] = [8080, 80] + workload.services.values.flatMap { Array($0.values) }
        for port in ports.prefix(4) {
            _ = store.authorize(L4Connection(source: source, destination: workload, destinationPort: port,
                                             sourceAddress: "10.244.0.9", destinationAddress: workload.workloadIPs.first))
        }
    }
    for service in snapshot.services.prefix(16) {
        _ = store.service(hostname: service.hostname)
        for vip in service.vips.prefix(4) { _ = store.service(vip: vip.address, network: vip.network) }
        _ = store.endpoints(of: service)
    }
    return 0
}
