import Foundation
import GRPCCore
import Logging
import MeshIdentity
import MeshProto
import SwiftProtobuf

/// The `IstioCertificateService` implementation behind ``IstioCAServer``.
struct IstioCAService: Istio_V1_Auth_IstioCertificateService.ServiceProtocol {
    static let impersonationKey = "ImpersonatedIdentity"

    let authority: RotatingAuthority
    let authenticator: any IstioCACallerAuthenticator
    let configuration: IstioCAServer.Configuration
    let logger: Logger

    func createCertificate(
        request: ServerRequest<Istio_V1_Auth_IstioCertificateRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Istio_V1_Auth_IstioCertificateResponse> {
        let caller = try await authenticator.authenticate(metadata: request.metadata, context: context)
        configuration.counters.csrReceived()
        let subject = try await subjectIdentity(caller: caller, metadata: request.message.metadata)
        let ttl = lifetime(requestedSeconds: request.message.validityDuration)
        let chain: [String]
        do {
            // Istio's reply: leaf first, then intermediates, the roots last: the signing root first,
            // then any other root clients must trust (during a root rotation).
            let state = authority.current
            let issued = try state.signer.issue(csrPEM: request.message.csr, allowedID: subject, ttl: ttl)
            chain = try (issued + state.roots).map { try $0.serializeAsPEM().pemString }
        } catch let error as CertificateAuthorityError {
            configuration.counters.csrRefused()
            logger.warning("rejected CSR", metadata: ["caller": "\(caller)", "subject": "\(subject)", "error": "\(error)"])
            throw RPCError(code: .invalidArgument, message: "CSR rejected: \(error)")
        }
        configuration.counters.certificateIssued()
        logger.debug("issued certificate", metadata: ["caller": "\(caller)", "subject": "\(subject)", "ttl": "\(ttl)"])
        var response = Istio_V1_Auth_IstioCertificateResponse()
        response.certChain = chain
        return ServerResponse(message: response)
    }

    /// The identity to certify: the caller's own, or an impersonated one the caller may request.
    private func subjectIdentity(caller: SPIFFEID, metadata: Google_Protobuf_Struct) async throws -> SPIFFEID {
        var requested = caller
        if let value = metadata.fields[Self.impersonationKey], case .stringValue(let text)? = value.kind, !text.isEmpty {
            do {
                requested = try SPIFFEID(text)
            } catch {
                configuration.counters.csrRefused()
                throw RPCError(code: .invalidArgument, message: "ImpersonatedIdentity '\(text)' is not a SPIFFE ID: \(error)")
            }
        }
        // A caller renewing its own identity is allowed unless a policy says otherwise.
        if requested == caller && configuration.impersonationPolicy == nil { return caller }
        let policy = configuration.impersonationPolicy ?? FixedImpersonators(configuration.impersonators)
        if let reason = await policy.refusal(caller: caller, requested: requested) {
            configuration.counters.impersonationRefused()
            logger.warning("impersonation refused", metadata: ["caller": "\(caller)", "requested": "\(requested)", "reason": "\(reason)"])
            throw RPCError(code: .permissionDenied, message: reason)
        }
        return requested
    }

    private func lifetime(requestedSeconds: Int64) -> TimeInterval {
        guard requestedSeconds > 0 else { return configuration.defaultTTL }
        return min(TimeInterval(requestedSeconds), configuration.maximumTTL)
    }
}
