import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import MeshIdentity
import MeshProto

/// An Istio-compatible CA: `istio.v1.auth.IstioCertificateService/CreateCertificate`
/// signs CSRs with a ``CertificateAuthority`` for the authenticated caller's
/// identity, or for `ImpersonatedIdentity` when the caller may impersonate.
public final class IstioCAServer: Sendable {
    /// Signing policy.
    public struct Configuration: Sendable {
        /// The address to bind (IPv4 or IPv6 literal); `127.0.0.1` by default.
        public var host: String
        /// The port to bind; 0 picks a free one. Istio's is 15012 (over TLS).
        public var port: Int
        /// The lifetime when the request asks for none.
        public var defaultTTL: TimeInterval
        /// The longest lifetime granted; longer requests are shortened.
        public var maximumTTL: TimeInterval
        /// Callers allowed to request certificates for other identities (e.g. a node agent).
        public var impersonators: Set<SPIFFEID>
        /// Plaintext by default; ``SPIFFEGRPCSecurity/server(svids:bundles:authorizer:verifier:logger:)`` for mTLS.
        public var transportSecurity: HTTP2ServerTransport.Posix.TransportSecurity
        /// Decides impersonation when set; otherwise ``impersonators`` may request any identity.
        public var impersonationPolicy: (any IstioCAImpersonationPolicy)?
        /// CSR and issuance counters.
        public var counters: IstioCACounters

        /// Creates a configuration.
        public init(host: String = "127.0.0.1", port: Int = 15012, defaultTTL: TimeInterval = CertificateAuthority.defaultTTL, maximumTTL: TimeInterval = 90 * 24 * 3600, impersonators: Set<SPIFFEID> = [], transportSecurity: HTTP2ServerTransport.Posix.TransportSecurity = .plaintext,
                    impersonationPolicy: (any IstioCAImpersonationPolicy)? = nil, counters: IstioCACounters = IstioCACounters()) {
            self.host = host
            self.port = port
            self.defaultTTL = defaultTTL
            self.maximumTTL = maximumTTL
            self.impersonators = impersonators
            self.transportSecurity = transportSecurity
            self.impersonationPolicy = impersonationPolicy
            self.counters = counters
        }
    }

    private let server: GRPCServer<HTTP2ServerTransport.Posix>

    /// Creates a server signing with `authority`; callers are identified by `authenticator`.
    public convenience init(authority: CertificateAuthority, authenticator: any IstioCACallerAuthenticator, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "swift-mesh.istio-ca")) {
        self.init(authority: RotatingAuthority(signer: authority), authenticator: authenticator, configuration: configuration, logger: logger)
    }

    /// Creates a server signing with whatever `authority` holds at each request (root rotation).
    public init(authority: RotatingAuthority, authenticator: any IstioCACallerAuthenticator, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "swift-mesh.istio-ca")) {
        let transport = HTTP2ServerTransport.Posix(
            address: configuration.host.contains(":")
                ? .ipv6(host: configuration.host, port: configuration.port)
                : .ipv4(host: configuration.host, port: configuration.port),
            transportSecurity: configuration.transportSecurity
        )
        let service = Self.service(authority: authority, authenticator: authenticator, configuration: configuration, logger: logger)
        self.server = GRPCServer(transport: transport, services: [service])
    }

    /// The `IstioCertificateService` alone, to serve beside other services on
    /// one gRPC server (istiod serves xDS and the CA on 15012); the
    /// configuration's address and transport security are not used.
    public static func service(authority: CertificateAuthority, authenticator: any IstioCACallerAuthenticator, configuration: Configuration = Configuration(),
                               logger: Logger = Logger(label: "swift-mesh.istio-ca")) -> any RegistrableRPCService {
        service(authority: RotatingAuthority(signer: authority), authenticator: authenticator, configuration: configuration, logger: logger)
    }

    /// The service alone, signing with whatever `authority` holds at each request (root rotation).
    public static func service(authority: RotatingAuthority, authenticator: any IstioCACallerAuthenticator, configuration: Configuration = Configuration(),
                               logger: Logger = Logger(label: "swift-mesh.istio-ca")) -> any RegistrableRPCService {
        IstioCAService(authority: authority, authenticator: authenticator, configuration: configuration, logger: logger)
    }

    /// Serves until ``shutdown()`` or cancellation.
    public func run() async throws {
        try await server.serve()
    }

    /// The bound port, once listening.
    public func listeningPort() async throws -> Int {
        let address = try await server.transport.listeningAddress
        if let ipv4 = address.ipv4 { return ipv4.port }
        if let ipv6 = address.ipv6 { return ipv6.port }
        throw IdentityServicesError.notListening
    }

    /// Stops accepting calls; ``run()`` returns when open calls finish.
    public func shutdown() {
        server.beginGracefulShutdown()
    }
}
