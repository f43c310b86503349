import NIOCore

/// Makes the TCP connections a node proxy opens on a workload's behalf from
/// inside that workload's network namespace, when the proxy holds it (in-pod
/// capture, as Istio's ztunnel does): the peer then sees the workload's own
/// address, and the namespace's capture rules let the marked socket pass.
///
/// HBONE asks it for every connection it makes for a workload: pooled
/// tunnels (for the source workload, by the pool key's source address),
/// inbound upstreams (for the destination workload) and passthroughs. A nil
/// answer means "not a workload whose namespace is held": the connection is
/// then made from the proxy's own namespace as usual.
public protocol WorkloadConnector: Sendable {
    /// A TCP socket already connected to `destination`, created in the network
    /// namespace of the workload at `workload` (an IP address), or nil when that
    /// namespace is not held. The caller owns the returned descriptor.
    func connectedSocket(to destination: SocketAddress, forWorkload workload: String, timeout: TimeAmount) async throws -> NIOBSDSocket.Handle?
}
