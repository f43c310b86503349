import Foundation
import IdentityServices
import MeshIdentity

enum IdentityFixture {
    static let trustDomain = TrustDomain.clusterLocal

    static func authority() throws -> CertificateAuthority {
        try CertificateAuthority.selfSigned(trustDomain: trustDomain)
    }

    static func id(_ namespace: String, _ serviceAccount: String) throws -> SPIFFEID {
        try SPIFFEID.istio(trustDomain: trustDomain, namespace: namespace, serviceAccount: serviceAccount)
    }

    /// A fresh socket path short enough for sun_path.
    static func socketPath() -> String {
        "/tmp/mesh-wl-\(UUID().uuidString.prefix(8)).sock"
    }
}

/// Runs a server's `run()` in the background for the duration of `body`.
func withBackground<T: Sendable>(
    run: @escaping @Sendable () async throws -> Void,
    shutdown: @escaping @Sendable () -> Void,
    _ body: @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await run() }
        defer {
            shutdown()
            group.cancelAll()
        }
        return try await body()
    }
}
