/// How the server classified a request on an ADS stream.
enum RequestOutcome: Sendable, Equatable {
    /// The first request for a type on this stream, or a subscription change.
    case subscribe
    /// The client accepted the response with this nonce.
    case ack
    /// The client rejected the response with this nonce.
    case nack(message: String)
    /// The request answered a nonce that is no longer current; ignored.
    case stale
}
