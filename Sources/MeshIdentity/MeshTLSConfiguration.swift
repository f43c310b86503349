import Logging

/// Settings for ``MeshTLS``; the defaults are the mesh's wire facts.
///
/// TLS 1.3 is the only version offered or accepted. BoringSSL fixes the TLS 1.3
/// cipher suites (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305) and prefers
/// AES-GCM on CPUs with AES instructions, which is what ztunnel negotiates too.
public struct MeshTLSConfiguration: Sendable {
    /// ALPN protocols offered (client) or accepted (server), in preference order.
    public var applicationProtocols: [String]
    /// Who may connect to a server built from this configuration.
    public var serverAuthorizer: SPIFFEAuthorizer
    /// The chain validator.
    public var verifier: X509SVIDVerifier
    /// The logger for handshake rejections.
    public var logger: Logger

    public init(
        applicationProtocols: [String] = ["h2"],
        serverAuthorizer: SPIFFEAuthorizer = .anyVerified,
        verifier: X509SVIDVerifier = X509SVIDVerifier(),
        logger: Logger = Logger(label: "mesh.identity.tls")
    ) {
        self.applicationProtocols = applicationProtocols
        self.serverAuthorizer = serverAuthorizer
        self.verifier = verifier
        self.logger = logger
    }
}
