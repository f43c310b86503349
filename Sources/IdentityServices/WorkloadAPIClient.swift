import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshIdentity
import MeshProto

/// A SPIFFE Workload API client over a Unix socket, usable as an
/// ``SVIDProvider`` (one fetch per call) or as a push feed into an
/// ``SVIDSource`` (``watch(publishingTo:)``).
public struct WorkloadAPIClient: SVIDProvider {
    /// The Workload API socket path (as in `SPIFFE_ENDPOINT_SOCKET`, without `unix://`).
    public var socketPath: String

    /// Creates a client for `socketPath`; `unix://` prefixes are accepted.
    public init(socketPath: String) {
        self.socketPath = socketPath.hasPrefix("unix://") ? String(socketPath.dropFirst("unix://".count)) : socketPath
    }

    /// Fetches the first X509-SVID the Workload API offers.
    public func fetchSVID() async throws -> X509SVID {
        try await withStream { responses in
            for try await response in responses {
                return try Self.svid(from: response)
            }
            throw IdentityServicesError.noSVIDInResponse
        }
    }

    /// Publishes every SVID the Workload API pushes into `source` until cancelled or the stream ends.
    public func watch(publishingTo source: SVIDSource) async throws {
        try await withStream { responses in
            for try await response in responses {
                source.publish(try Self.svid(from: response))
            }
        }
    }

    /// Decodes the first SVID of a response (concatenated DER chain, PKCS#8 key).
    static func svid(from response: SPIFFE_X509SVIDResponse) throws -> X509SVID {
        guard let first = response.svids.first else { throw IdentityServicesError.noSVIDInResponse }
        do {
            return try X509SVID(chainDER: Array(first.x509Svid), privateKeyDER: Array(first.x509SvidKey))
        } catch {
            throw IdentityServicesError.malformedResponse("X509-SVID for \(first.spiffeID): \(error)")
        }
    }

    private func withStream<T: Sendable>(
        _ body: @escaping @Sendable (RPCAsyncSequence<SPIFFE_X509SVIDResponse, any Error>) async throws -> T
    ) async throws -> T {
        let transport = try HTTP2ClientTransport.Posix(
            target: .unixDomainSocket(path: socketPath),
            transportSecurity: .plaintext
        )
        return try await withGRPCClient(transport: transport) { client in
            let api = SPIFFE_SpiffeWorkloadAPI.Client(wrapping: client)
            return try await api.fetchX509SVID(
                SPIFFE_X509SVIDRequest(),
                metadata: [WorkloadAPIService.securityHeader: "true"]
            ) { response in
                try await body(response.messages)
            }
        }
    }
}
