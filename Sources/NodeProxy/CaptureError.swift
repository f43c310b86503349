#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a pod could not be captured, or a namespace operation failed.
public enum CaptureError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A system call failed (`operation` names what was being done).
    case system(operation: String, errno: Int32)
    /// The descriptor given as a pod's network namespace is not one.
    case notANetworkNamespace(String)
    /// A port in the pod's namespace is taken (for example an application on 15001).
    case portInUse(port: Int, pod: String)
    /// The pod's namespace has no IPv4 address outside loopback.
    case noPodAddress(pod: String)
    /// The outgoing connection did not complete in time.
    case connectTimedOut(destination: String)
    /// The capture manager is shutting down.
    case shutDown

    public var description: String {
        switch self {
        case .system(let operation, let errno):
            return "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case .notANetworkNamespace(let what):
            return "\(what) is not a network namespace"
        case .portInUse(let port, let pod):
            return "port \(port) is already in use in pod \(pod)'s network namespace"
        case .noPodAddress(let pod):
            return "pod \(pod)'s network namespace has no IPv4 address"
        case .connectTimedOut(let destination):
            return "connect to \(destination) timed out"
        case .shutDown:
            return "capture is shutting down"
        }
    }
}

