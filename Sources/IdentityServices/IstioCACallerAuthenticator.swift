import GRPCCore
import MeshIdentity

/// Establishes who calls the Istio CA (Istio uses the caller's mTLS identity
/// or a Kubernetes token; swift-mesh leaves the mechanism to this hook).
public protocol IstioCACallerAuthenticator: Sendable {
    /// Returns the caller's identity, or throws an `RPCError` (usually unauthenticated).
    func authenticate(metadata: Metadata, context: ServerContext) async throws -> SPIFFEID
}

/// Authenticates callers by bearer token (`authorization: Bearer <token>`),
/// each token naming one identity.
public struct BearerTokenAuthenticator: IstioCACallerAuthenticator {
    /// Identity per token.
    public var tokens: [String: SPIFFEID]

    /// Creates an authenticator from a token table.
    public init(tokens: [String: SPIFFEID]) {
        self.tokens = tokens
    }

    public func authenticate(metadata: Metadata, context: ServerContext) async throws -> SPIFFEID {
        for value in metadata[stringValues: "authorization"] {
            let parts = value.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer", let id = tokens[String(parts[1])] {
                return id
            }
        }
        throw RPCError(code: .unauthenticated, message: "no known bearer token in the authorization metadata")
    }
}

/// Authenticates callers by the SPIFFE ID of their mTLS client certificate
/// (serve with ``SPIFFEGRPCSecurity/server(svids:bundles:authorizer:verifier:logger:)``),
/// as istiod does for node agents.
public struct MTLSCallerAuthenticator: IstioCACallerAuthenticator {
    /// Creates the authenticator.
    public init() {}

    public func authenticate(metadata: Metadata, context: ServerContext) async throws -> SPIFFEID {
        guard let id = SPIFFEGRPCSecurity.peerID(of: context) else {
            throw RPCError(code: .unauthenticated, message: "no verified SPIFFE client certificate on this connection")
        }
        return id
    }
}
