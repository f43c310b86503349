/// Errors raised by the Workload API and Istio CA servers and clients.
public enum IdentityServicesError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The Workload API server returned no SVID in its first response.
    case noSVIDInResponse
    /// An SVID or bundle in a response could not be parsed.
    case malformedResponse(String)
    /// The Istio CA returned an empty certificate chain.
    case emptyCertificateChain
    /// The Unix socket path is too long or otherwise unusable.
    case invalidSocketPath(String)
    /// The server is not listening (not started, or already stopped).
    case notListening

    public var description: String {
        switch self {
        case .noSVIDInResponse:
            "the Workload API answered without any X509-SVID; check that this workload is registered"
        case .malformedResponse(let detail):
            "the identity service sent a malformed response: \(detail)"
        case .emptyCertificateChain:
            "the Istio CA returned no certificates; check its logs for the rejected CSR"
        case .invalidSocketPath(let path):
            "cannot use Unix socket path '\(path)' (it must be absolute and shorter than 108 bytes)"
        case .notListening:
            "the server is not listening; call run() first"
        }
    }
}
