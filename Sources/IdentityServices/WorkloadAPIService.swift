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
        try await streamOnEverySVID(request.metadata, context: context) { svid, bundles in
            try X509SVIDResponseBuilder.response(for: svid, bundles: bundles)
        }
    }

    func fetchX509Bundles(
        request: ServerRequest<SPIFFE_X509BundlesRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<SPIFFE_X509BundlesResponse> {
        // A CA rotation comes with new SVIDs; re-send the bundles on every SVID change.
        try await streamOnEverySVID(request.metadata, context: context) { _, bundles in
            try X509SVIDResponseBuilder.bundles(bundles)
        }
    }

    func fetchJWTSVID(
        request: ServerRequest<SPIFFE_JWTSVIDRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<SPIFFE_JWTSVIDResponse> {
        try await refuseUnimplemented("JWT-SVIDs are", request.metadata, context: context)
    }

    func fetchJWTBundles(
        request: ServerRequest<SPIFFE_JWTBundlesRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<SPIFFE_JWTBundlesResponse> {
        try await refuseUnimplemented("JWT bundles are", request.metadata, context: context)
    }

    func validateJWTSVID(
        request: ServerRequest<SPIFFE_ValidateJWTSVIDRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<SPIFFE_ValidateJWTSVIDResponse> {
        try await refuseUnimplemented("JWT-SVID validation is", request.metadata, context: context)
    }

    /// Authorizes the caller, then writes `message(svid, bundles)` for its current SVID and
    /// every new one, until the stream is cancelled or the server shuts down.
    private func streamOnEverySVID<Message: Sendable>(
        _ metadata: Metadata,
        context: ServerContext,
        message: @escaping @Sendable (X509SVID, TrustBundleSet) throws -> Message
    ) async throws -> StreamingServerResponse<Message> {
        let source = try await authorize(metadata, context: context)
        let bundles = self.bundles
        return StreamingServerResponse { [shutdown] writer in
            try await shutdown.run {
                for await svid in source.updates() {
                    try await writer.write(try message(svid, bundles.current))
                }
            }
            return [:]
        }
    }

    /// The JWT half of the API: the security header is still enforced, then Unimplemented.
    private func refuseUnimplemented(_ what: String, _ metadata: Metadata, context: ServerContext) async throws -> Never {
        _ = try await authorize(metadata, context: context)
        throw RPCError(code: .unimplemented, message: "\(what) not served by swift-mesh")
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
