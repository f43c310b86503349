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
