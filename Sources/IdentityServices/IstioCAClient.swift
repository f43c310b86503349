import Crypto
import Foundation
import NIOConcurrencyHelpers
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshIdentity
import MeshProto
import SwiftProtobuf
import X509

/// An Istio CA client usable as an ``SVIDProvider``: each fetch generates a
/// P-256 key, sends a CSR for ``identity`` and returns the signed SVID.
///
/// Given several CA replicas (``servers``), a fetch asks the one that answered
/// last, and on any failure the next, until one signs or all have failed (the
/// error is then the last one's).
public struct IstioCAClient: SVIDProvider {
    /// One CA address (an IP literal or a DNS name).
    public typealias Server = ServerAddress

    /// The CA replicas, in order of preference (never empty).
    public var servers: [Server]
    /// The identity to request.
    public var identity: SPIFFEID
    /// Sent as `authorization: Bearer <token>` when set.
    public var bearerToken: String?
    /// Requested lifetime in seconds (0 lets the CA choose).
    public var validitySeconds: Int64
    /// When set, asks the CA to issue for this identity instead (node agents).
    public var impersonate: SPIFFEID?
    /// The transport security of a request, asked for at every request (as ``ADSClient``'s is), so
    /// that an mTLS client built from an `SVIDSource` presents the credential current then (a node
    /// credential renews while the client lives on). Plaintext by default;
    /// ``SPIFFEGRPCSecurity/client(svids:bundles:authorizer:verifier:logger:)`` for mTLS.
    public var transportSecurity: @Sendable () throws -> HTTP2ClientTransport.Posix.TransportSecurity
    /// Called with the roots at the end of every answer (self-signed certificates; the CA that
    /// signed first, then any other root it says to trust, as during a root rotation), so the
    /// caller can keep its trust bundle in step with the CA.
    public var onRoots: (@Sendable ([Certificate]) -> Void)?

    private let preferred = PreferredServer()

    /// Creates a client of one CA.
    public init(host: String, port: Int, identity: SPIFFEID, bearerToken: String? = nil, validitySeconds: Int64 = 0, impersonate: SPIFFEID? = nil, transportSecurity: HTTP2ClientTransport.Posix.TransportSecurity = .plaintext) {
        self.init(servers: [Server(host: host, port: port)], identity: identity, bearerToken: bearerToken, validitySeconds: validitySeconds,
                  impersonate: impersonate, transportSecurity: transportSecurity)
    }

    /// Creates a client of CA replicas (`servers` must not be empty). `makeTransportSecurity`, when
    /// given, is asked at every request; otherwise every request uses `transportSecurity`.
    public init(servers: [Server], identity: SPIFFEID, bearerToken: String? = nil, validitySeconds: Int64 = 0, impersonate: SPIFFEID? = nil,
                transportSecurity: HTTP2ClientTransport.Posix.TransportSecurity = .plaintext,
                makeTransportSecurity: (@Sendable () throws -> HTTP2ClientTransport.Posix.TransportSecurity)? = nil,
                onRoots: (@Sendable ([Certificate]) -> Void)? = nil) {
        precondition(!servers.isEmpty, "IstioCAClient needs at least one server")
        self.onRoots = onRoots
        self.servers = servers
        self.identity = identity
        self.bearerToken = bearerToken
        self.validitySeconds = validitySeconds
        self.impersonate = impersonate
        self.transportSecurity = makeTransportSecurity ?? { transportSecurity }
    }

    public func fetchSVID() async throws -> X509SVID {
        let key = P256.Signing.PrivateKey()
        let subject = impersonate ?? identity
        let csr = try CertificateAuthority.makeCSR(id: subject, privateKey: key)
        var request = Istio_V1_Auth_IstioCertificateRequest()
        request.csr = try csr.serializeAsPEM().pemString
        request.validityDuration = validitySeconds
        if let impersonate {
            request.metadata.fields[IstioCAService.impersonationKey] = Google_Protobuf_Value(stringValue: impersonate.description)
        }
        var metadata: Metadata = [:]
        if let bearerToken { metadata.addString("Bearer \(bearerToken)", forKey: "authorization") }
        let transportSecurity = try self.transportSecurity()
        let chain = try await failingOver { server in
            let transport = try HTTP2ClientTransport.Posix(target: server.grpcTarget, transportSecurity: transportSecurity)
            return try await withGRPCClient(transport: transport) { client in
                try await Istio_V1_Auth_IstioCertificateService.Client(wrapping: client)
                    .createCertificate(request, metadata: metadata).certChain
            }
        }
        guard !chain.isEmpty else { throw IdentityServicesError.emptyCertificateChain }
        do {
            // The reply ends with the roots; an SVID presents the leaf and intermediates only.
            var certificates = try chain.map { try Certificate(pemEncoded: $0) }
            var roots: [Certificate] = []
            while certificates.count > 1, let last = certificates.last, last.issuer == last.subject {
                roots.insert(certificates.removeLast(), at: 0)
            }
            let svid = try X509SVID(chain: certificates, privateKey: key)
            if !roots.isEmpty { onRoots?(roots) }
            return svid
        } catch {
            throw IdentityServicesError.malformedResponse("certificate chain from the Istio CA: \(error)")
        }
    }

    /// Runs `body` against the preferred server, then each other in turn until one succeeds.
    private func failingOver<T: Sendable>(_ body: (Server) async throws -> T) async throws -> T {
        let first = preferred.index % servers.count
        for offset in 0..<servers.count {
            let index = (first + offset) % servers.count
            do {
                let result = try await body(servers[index])
                preferred.index = index
                return result
            } catch where offset < servers.count - 1 {
                try Task.checkCancellation()
            }
        }
        preconditionFailure("the last server's error is thrown above")
    }
}

/// The CA replica that answered last, shared by copies of one ``IstioCAClient``.
private final class PreferredServer: Sendable {
    private let value = NIOLockedValueBox(0)
    var index: Int {
        get { value.withLockedValue { $0 } }
        set { value.withLockedValue { $0 = newValue } }
    }
}
