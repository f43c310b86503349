import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshIdentity
import MeshProto
import SwiftProtobuf
import X509

/// An Istio CA client usable as an ``SVIDProvider``: each fetch generates a
/// P-256 key, sends a CSR for ``identity`` and returns the signed SVID.
public struct IstioCAClient: SVIDProvider {
    /// The CA's host.
    public var host: String
    /// The CA's port.
    public var port: Int
    /// The identity to request.
    public var identity: SPIFFEID
    /// Sent as `authorization: Bearer <token>` when set.
    public var bearerToken: String?
    /// Requested lifetime in seconds (0 lets the CA choose).
    public var validitySeconds: Int64
    /// When set, asks the CA to issue for this identity instead (node agents).
    public var impersonate: SPIFFEID?
    /// Plaintext by default; ``SPIFFEGRPCSecurity/client(svids:bundles:authorizer:verifier:logger:)`` for mTLS.
    public var transportSecurity: HTTP2ClientTransport.Posix.TransportSecurity

    /// Creates a client.
    public init(host: String, port: Int, identity: SPIFFEID, bearerToken: String? = nil, validitySeconds: Int64 = 0, impersonate: SPIFFEID? = nil, transportSecurity: HTTP2ClientTransport.Posix.TransportSecurity = .plaintext) {
        self.host = host
        self.port = port
        self.identity = identity
        self.bearerToken = bearerToken
        self.validitySeconds = validitySeconds
        self.impersonate = impersonate
        self.transportSecurity = transportSecurity
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
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: host, port: port), transportSecurity: transportSecurity)
        let chain = try await withGRPCClient(transport: transport) { client in
            try await Istio_V1_Auth_IstioCertificateService.Client(wrapping: client)
                .createCertificate(request, metadata: metadata).certChain
        }
        guard !chain.isEmpty else { throw IdentityServicesError.emptyCertificateChain }
        do {
            // The reply ends with the root; an SVID presents the leaf and intermediates only.
            var certificates = try chain.map { try Certificate(pemEncoded: $0) }
            if certificates.count > 1, let last = certificates.last, last.issuer == last.subject {
                certificates.removeLast()
            }
            return try X509SVID(chain: certificates, privateKey: key)
        } catch {
            throw IdentityServicesError.malformedResponse("certificate chain from the Istio CA: \(error)")
        }
    }
}
