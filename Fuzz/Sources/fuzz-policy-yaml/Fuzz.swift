import FuzzSupport
import PolicyEngine

// Policy YAML as PolicyEngine's ManifestLoader reads it (Istio
// AuthorizationPolicy, Kubernetes NetworkPolicy, CiliumNetworkPolicy, Pods,
// Services, Namespaces; multi-document), then compiled into a PolicySet and
// the datapath's tables, and asked for L4 and L7 decisions between the
// workloads it declared. Loading is all-or-nothing and must fail with a
// PolicyLoadError, never trap.

private let logger = Fuzz.quietLogger()
private let loader = ManifestLoader(logger: logger)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = Fuzz.text(Fuzz.bytes(data, size))
    let bundle: PolicyBundle
    do {
        bundle = try loader.load(yaml: text, file: "fuzz.yaml")
    } catch {
        _ = error.description
        return 0
    }
    guard let set = try? PolicySet(bundle: bundle, logger: logger) else { return 0 }
    _ = DatapathCompiler().compile(set)
    let workloads = Array(set.inventory.workloads.prefix(4))
    for source in workloads {
        for destination in workloads {
            var ports: [UInt16] = [80, 8080]
            ports += destination.namedPorts.prefix(2).map(\.port)
            for port in ports {
                let connection = Connection.mesh(from: source, to: destination, port: port)
                _ = set.decide(connection)
                _ = set.decide(HTTPRequest(connection: connection, method: "GET", path: "/api?x=1", host: "echo",
                                           headers: ["x-user": "alice"], requestPrincipal: "issuer/alice"))
                let plaintext = Connection(source: .workload(source), destination: .workload(destination), destinationPort: port)
                _ = set.decide(plaintext)
            }
        }
    }
    return 0
}
