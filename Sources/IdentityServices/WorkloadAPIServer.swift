import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import MeshIdentity
import MeshProto

/// A SPIFFE Workload API server on a Unix socket: streams X509-SVIDs (and
/// bundles) from an ``SVIDSource`` to local workloads, pushing on rotation.
///
/// Requests without the `workload.spiffe.io: true` metadata are refused with
/// InvalidArgument, as the specification requires. The attestor hook maps
/// each caller to its SVID source.
public final class WorkloadAPIServer: Sendable {
    /// Maps a caller to the SVID source that serves it; throw to refuse the caller.
    public typealias Attestor = @Sendable (WorkloadAPICaller) async throws -> SVIDSource

    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let latch = ShutdownLatch()
    /// The Unix socket path.
    public let socketPath: String

    /// Creates a server on `socketPath` whose callers are mapped by `attestor`;
    /// `bundles` supplies the trust bundles sent with each SVID.
    public init(socketPath: String, bundles: TrustBundleStore, attestor: @escaping Attestor, logger: Logger = Logger(label: "swift-mesh.workload-api")) throws(IdentityServicesError) {
        guard socketPath.hasPrefix("/"), socketPath.utf8.count < 108 else { throw .invalidSocketPath(socketPath) }
        self.socketPath = socketPath
        let transport = HTTP2ServerTransport.Posix(
            address: .unixDomainSocket(path: socketPath),
            transportSecurity: .plaintext
        )
        let service = WorkloadAPIService(bundles: bundles, attestor: attestor, shutdown: latch, logger: logger)
        self.server = GRPCServer(transport: transport, services: [service])
    }

    /// Creates a server that serves one SVID source to every caller.
    public convenience init(socketPath: String, source: SVIDSource, bundles: TrustBundleStore, logger: Logger = Logger(label: "swift-mesh.workload-api")) throws(IdentityServicesError) {
        try self.init(socketPath: socketPath, bundles: bundles, attestor: { _ in source }, logger: logger)
    }

    /// Serves until ``shutdown()`` or cancellation (prefer ``shutdown()``: cancelling
    /// while a connection is being accepted can trap in NIO, apple/swift-nio#2637).
    /// A stale socket file is removed first.
    public func run() async throws {
        try? FileManager.default.removeItem(atPath: socketPath)
        try await server.serve()
    }

    /// Waits until the socket accepts connections.
    public func waitUntilListening() async throws {
        _ = try await server.transport.listeningAddress
    }

    /// Stops accepting calls and ends the open SVID and bundle streams (they
    /// never end on their own), so ``run()`` returns.
    public func shutdown() {
        server.beginGracefulShutdown()
        latch.fire()
    }
}
