import Foundation
import Glibc
import MeshTestSupport
import NIOCore
import Testing
@testable import NodeProxy

/// The connect ztunnel makes on a pod's behalf: a socket made inside the pod's network
/// namespace and marked, its connect begun without blocking and, if still in progress,
/// waited for on a worker.
@Suite("Connecting from inside a pod's network namespace", .serialized,
       .enabled(if: getuid() == 0 || Interop.isCI, "needs root (network namespaces)"))
struct NamespaceConnectTests {
    /// Runs `startConnect`, then `finishConnect` if the connect is still in progress.
    private func connect(_ namespace: NetworkNamespace, to destination: SocketAddress, timeout: TimeAmount) throws(CaptureError) -> CInt {
        switch try namespace.startConnect(to: destination, mark: InPodRules.ztunnelMark) {
        case .connected(let socket): return socket
        case .inProgress(let socket): return try namespace.finishConnect(socket, to: destination, timeout: timeout)
        }
    }

    @Test("to a listener: connected and marked 0x539; nothing listening: refused; SYNs dropped: in progress, then timed out with the socket closed")
    func connects() throws {
        let name = "swn-conn-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        defer { _ = try? Interop.runBlocking("/usr/bin/env", ["ip", "netns", "del", name]) }
        for argv in [["ip", "netns", "add", name], ["ip", "-n", name, "link", "set", "lo", "up"],
                     ["ip", "netns", "exec", name, "iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"]] {
            let result = try Interop.runBlocking("/usr/bin/env", argv)
            try #require(result.status == 0, "\(argv.joined(separator: " ")): \(result.combined)")
        }
        let namespace = try NetworkNamespace.open(path: "/var/run/netns/\(name)")
        defer { namespace.close() }
        let listener = try namespace.tcpListener(port: 18080, loopback: true)
        defer { Glibc.close(listener) }

        let listening = try SocketAddress(ipAddress: "127.0.0.1", port: 18080)
        let socket = try connect(namespace, to: listening, timeout: .seconds(2))
        defer { Glibc.close(socket) }
        var mark: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        #expect(getsockopt(socket, SOL_SOCKET, SO_MARK, &mark, &length) == 0)
        #expect(UInt32(bitPattern: mark) == InPodRules.ztunnelMark)
        let accepted = accept(listener, nil, nil)
        #expect(accepted >= 0, "the connection reached the listener inside the namespace")
        if accepted >= 0 { Glibc.close(accepted) }

        let closed = try SocketAddress(ipAddress: "127.0.0.1", port: 18081)
        #expect(throws: CaptureError.system(operation: "connect to \(closed) from \(namespace.name)", errno: ECONNREFUSED)) {
            _ = try connect(namespace, to: closed, timeout: .seconds(2))
        }

        let dropped = try SocketAddress(ipAddress: "127.0.0.1", port: 9)
        guard case .inProgress(let pending) = try namespace.startConnect(to: dropped, mark: InPodRules.ztunnelMark) else {
            Issue.record("a connect whose SYN is dropped cannot have completed")
            return
        }
        #expect(throws: CaptureError.connectTimedOut(destination: "\(dropped)")) {
            _ = try namespace.finishConnect(pending, to: dropped, timeout: .milliseconds(200))
        }
        let left = try Interop.runBlocking("/usr/bin/env", ["ip", "netns", "exec", name, "ss", "-Htn", "state", "syn-sent"])
        #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "the timed-out socket was closed: \(left.stdout)")
    }
}
