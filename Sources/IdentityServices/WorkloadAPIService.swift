import GRPCCore
import Logging
import MeshIdentity
import MeshProto

/// The `SpiffeWorkloadAPI` gRPC service: X509-SVID and X509 bundle streams.
/// JWT methods answer Unimplemented.
struct WorkloadAPIService: SPIFFE_SpiffeWorkloadAPI.ServiceProtocol {
    static let securityHeader = "workload.spiffe.io"

    let bundles: TrustBundleStore
    let attestor: WorkloadAPIServer.Attestor
    let shutdown: ShutdownLatch
    let logger: Logger

    func fetchX509SVID(
        request: ServerRequest<SPIFFE_X509SVIDRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<SPIFFE_X509SVIDResponse> {
        let source = try await authorize(request.metadata, context: context)
        let bundles = self.bundles
        return StreamingServerResponse { [shutdown] writer in
            try await shutdown.run {
                for await svid in source.updates() {
                    try await writer.write(try X509SVIDResponseBuilder.response(for: svid, bundles: bundles.current))
                }
            }
            return [:]
        }
    }

    func fetchX509Bundles(
        request: ServerRequest<SPIFFE_X509BundlesRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<SPIFFE_X509BundlesResponse> {
        let source = try await authorize(request.metadata, context: context)
        let bundles = self.bundles
        return StreamingServerResponse { [shutdown] writer in
            try await shutdown.run {
                // A CA rotation comes with new SVIDs; re-send the bundles on every SVID change.
                for await _ in source.updates() {
                    try await writer.write(try X509SVIDResponseBuilder.bundles(bundles.current))
                }
            }
            return [:]
        }
    }

    func fetchJWTSVID(
        request: ServerRequest<SPIFFE_JWTSVIDRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<SPIFFE_JWTSVIDResponse> {
        _ = try await authorize(request.metadata, context: context)
        throw RPCError(code: .unimplemented, message: "JWT-SVIDs are not served by swift-mesh")
    }

    func fetchJWTBundles(
        request: ServerRequest<SPIFFE_JWTBundlesRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<SPIFFE_JWTBundlesResponse> {
        _ = try await authorize(request.metadata, context: context)
        throw RPCError(code: .unimplemented, message: "JWT bundles are not served by swift-mesh")
    }

    func validateJWTSVID(
        request: ServerRequest<SPIFFE_ValidateJWTSVIDRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<SPIFFE_ValidateJWTSVIDResponse> {
        _ = try await authorize(request.metadata, context: context)
        throw RPCError(code: .unimplemented, message: "JWT-SVID validation is not served by swift-mesh")
    }

    /// Enforces the security header, then asks the attestor for the caller's source.
    private func authorize(_ metadata: Metadata, context: ServerContext) async throws -> SVIDSource {
        guard metadata[stringValues: Self.securityHeader].contains("true") else {
            logger.warning("Workload API request without the security header", metadata: ["peer": "\(context.remotePeer)"])
            throw RPCError(code: .invalidArgument, message: "security header missing from request")
        }
        var flattened: [String: String] = [:]
        for (key, value) in metadata {
            if case .string(let text) = value { flattened[key] = text }
        }
        return try await attestor(WorkloadAPICaller(remotePeer: context.remotePeer, metadata: flattened))
    }
}
