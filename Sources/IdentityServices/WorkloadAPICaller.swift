import GRPCCore

/// Who is calling the Workload API: what the transport knows about the peer.
///
/// An attestor maps this to the SVID source for that workload (on Linux,
/// typically by the peer's credentials on the Unix socket).
public struct WorkloadAPICaller: Sendable, Hashable {
    /// The transport's description of the remote peer (for a Unix socket, `unix:<path>`).
    public var remotePeer: String
    /// The request metadata, flattened to text values.
    public var metadata: [String: String]

    /// Creates a caller description.
    public init(remotePeer: String, metadata: [String: String] = [:]) {
        self.remotePeer = remotePeer
        self.metadata = metadata
    }
}
