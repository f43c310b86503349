import MeshIdentity
import NIOHTTP2

/// Errors reported by HBONE clients, pools and servers.
public enum HBONEError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The peer answered the CONNECT with a non-200 status.
    case connectRejected(status: Int, authority: String)
    /// The peer reset the stream before or instead of answering.
    case streamReset(code: UInt32)
    /// The connection or stream closed before the CONNECT was answered.
    case closedBeforeResponse
    /// The TLS peer did not negotiate ALPN `h2`.
    case alpnNotNegotiated(String?)
    /// A PING was not answered in time and the connection was dropped.
    case keepaliveTimeout
    /// The peer did not send its SETTINGS in time after the TLS handshake.
    case settingsTimeout
    /// The pool or server is shut down.
    case shutDown
    /// An authority is not `ip:port` or `host:port`.
    case invalidAuthority(String)
    /// The client has no valid SVID to present.
    case noIdentity
    /// The pool key's source IP cannot be bound as the local address of an outgoing connection
    /// (not an address of this host, or not of the destination's family).
    case sourceUnavailable(String)
    /// The peer broke HTTP/2 flow control or framing on the data path; the connection was closed with GOAWAY.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .connectRejected(let status, let authority):
            let meaning: String
            switch status {
            case 400: meaning = "bad request (not a CONNECT, or a bad authority)"
            case 401: meaning = "denied by the destination's authorization policy"
            case 503: meaning = "the destination is unknown to the peer or its upstream connect failed"
            default: meaning = "unexpected status"
            }
            return "HBONE CONNECT \(authority) answered \(status): \(meaning)"
        case .streamReset(let code):
            return "HBONE stream reset by the peer (HTTP/2 error code \(code))"
        case .closedBeforeResponse:
            return "HBONE stream closed before the peer answered the CONNECT"
        case .alpnNotNegotiated(let proto):
            return "HBONE peer negotiated ALPN \(proto ?? "none"), expected h2"
        case .keepaliveTimeout:
            return "HBONE connection dropped: the peer did not answer a PING in time"
        case .settingsTimeout:
            return "HBONE peer did not send HTTP/2 SETTINGS in time after the TLS handshake"
        case .shutDown:
            return "HBONE client or server is shut down"
        case .invalidAuthority(let value):
            return "invalid HBONE authority \"\(value)\": expected ip:port or host:port"
        case .noIdentity:
            return "no valid SVID to present: start the SVIDSource first"
        case .sourceUnavailable(let ip):
            return "cannot bind the outgoing HBONE connection to source IP \(ip): not an address of this host (set bindsSourceAddress to false to connect from any address)"
        case .protocolViolation(let what):
            return "HBONE peer broke HTTP/2 (flow control or framing), connection closed: \(what)"
        }
    }

    /// The HTTP status of a rejected CONNECT, if that is what this error is.
    public var status: Int? {
        if case .connectRejected(let status, _) = self { return status }
        return nil
    }
}
