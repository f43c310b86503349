import FuzzSupport
import MeshControlPlane

// Cluster manifests as the control plane reads them (Nodes, Namespaces, Pods,
// Services, ServiceAccounts, Gateways, HTTPRoutes, policies; multi-document
// YAML) with ClusterManifestLoader, then, when they load, converted to every
// xDS resource the control plane serves (MeshResourceSet: address
// allocation, Istio Address and Authorization, Envoy listeners, clusters,
// routes). A bad manifest must fail with a PolicyLoadError or a
// MeshConversionError, never trap.
//
// Input: the bytes up to the first 0x00 are one file, the rest (if any) a
// second, so that objects defined in two files and references across files
// are reached.

private let loader = ClusterManifestLoader(logger: Fuzz.quietLogger())

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Fuzz.bytes(data, size)
    var sources: [(file: String, text: String)] = []
    if let split = bytes.firstIndex(of: 0) {
        sources = [("a.yaml", Fuzz.text(bytes[..<split])), ("b.yaml", Fuzz.text(bytes[(split + 1)...]))]
    } else {
        sources = [("a.yaml", Fuzz.text(bytes))]
    }
    let state: ClusterState
    do {
        state = try loader.load(sources)
    } catch {
        _ = error.description
        return 0
    }
    guard let resources = try? MeshResourceSet(state: state) else { return 0 }
    // Rebuilding from the same state reuses every resource.
    if let again = try? MeshResourceSet(state: state, reusing: resources) {
        Fuzz.check(again.encodedCount == 0, "rebuilding unchanged state encoded \(again.encodedCount) resources again")
    }
    return 0
}
