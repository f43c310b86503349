import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import IdentityServices
import MeshControlPlane
import MeshIdentity
import MeshTestSupport
import XDSServer

/// A control plane as `mesh-controlplane serve` wires it, in process: a
/// ControlPlane fed by a DirectoryClusterSource (inotify, or 50 ms polls), an XDSServer on
/// 127.0.0.1 (port 0) with the Istio CA beside ADS, plaintext or SPIFFE mTLS.
struct ControlPlaneHarness: Sendable {
    let directory: URL
    let controlPlane: ControlPlane
    let server: XDSServer
    let port: Int
    let caCounters: IstioCACounters

    static let serverID = try! SPIFFEID("spiffe://cluster.local/ns/istio-system/sa/istiod")

    static func run<T: Sendable>(
        directory: URL,
        authority: CertificateAuthority? = nil,
        port: Int = 0,
        inotify: Bool = true,
        _ body: @Sendable (ControlPlaneHarness) async throws -> T
    ) async throws -> T {
        let cache = XDSSnapshotCache()
        let metrics = ControlPlaneMetrics()
        let controlPlane = ControlPlane(cache: cache, metrics: metrics)
        let source = DirectoryClusterSource(directory: directory.path, pollInterval: .milliseconds(50), inotify: inotify)
        await controlPlane.apply(source.load())
        var security = HTTP2ServerTransport.Posix.TransportSecurity.plaintext
        var services: [any RegistrableRPCService] = []
        let caCounters = IstioCACounters()
        if let authority {
            let svids = SVIDSource(svid: try authority.issueSVID(for: serverID))
            security = try SPIFFEGRPCSecurity.server(svids: svids, bundles: TrustBundleStore(authority.trustBundle), authorizer: .memberOf(authority.trustDomain))
            services = [IstioCAServer.service(authority: authority, authenticator: MTLSCallerAuthenticator(),
                                              configuration: .init(impersonationPolicy: controlPlane, counters: caCounters))]
        }
        let server = XDSServer(cache: cache, configuration: .init(host: "127.0.0.1", port: port, transportSecurity: security),
                               additionalServices: services, observer: metrics)
        let watching = Task { await controlPlane.run(source: source) }
        defer { watching.cancel() }
        return try await withBackground(run: { try await server.run() }, shutdown: { server.shutdown() }) {
            let harness = ControlPlaneHarness(directory: directory, controlPlane: controlPlane, server: server,
                                              port: try await server.listeningPort(), caCounters: caCounters)
            return try await body(harness)
        }
    }

    /// Writes `text` to `name` under the manifest directory (atomically, as an editor would save it).
    func write(_ name: String, _ text: String) throws {
        try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    func remove(_ name: String) throws {
        try FileManager.default.removeItem(at: directory.appendingPathComponent(name))
    }
}
