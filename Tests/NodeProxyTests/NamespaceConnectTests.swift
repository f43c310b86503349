import CNodeSockets
import Foundation
import Glibc
import MeshTestSupport
import NIOConcurrencyHelpers
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

    @Test("threads enter a pod's namespace and return to their own each time, through one descriptor of the process's namespace kept open (not one opened per entry)")
    func homeNamespace() throws {
        let name = "swn-home-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        defer { _ = try? Interop.runBlocking("/usr/bin/env", ["ip", "netns", "del", name]) }
        let made = try Interop.runBlocking("/usr/bin/env", ["ip", "netns", "add", name])
        try #require(made.status == 0, "ip netns add: \(made.combined)")
        let namespace = try NetworkNamespace.open(path: "/var/run/netns/\(name)")
        defer { namespace.close() }
        let podInode = try Self.inode("/var/run/netns/\(name)")

        // On threads of their own, as event loops and workers enter.
        let results = try (0..<2).map { _ in
            try Self.onNewThread { () throws -> (home: [CInt], inside: [UInt64], after: [UInt64], own: UInt64) in
                let own = try Self.inode("/proc/thread-self/ns/net")
                var home: [CInt] = [], inside: [UInt64] = [], after: [UInt64] = []
                for _ in 0..<20 {
                    inside.append(try namespace.enter { () throws(CaptureError) -> UInt64 in
                        (try? Self.inode("/proc/thread-self/ns/net")) ?? 0
                    })
                    after.append(try Self.inode("/proc/thread-self/ns/net"))
                    home.append(swiftmesh_node_home_netns())
                }
                return (home, inside, after, own)
            }
        }
        for result in results {
            #expect(result.inside.allSatisfy { $0 == podInode }, "inside the pod's namespace during each entry")
            #expect(result.after.allSatisfy { $0 == result.own }, "back in the thread's own namespace after each")
        }
        let descriptors = Set(results.flatMap(\.home))
        #expect(descriptors.count == 1 && descriptors.first! >= 0, "one descriptor for 40 entries on two threads: \(descriptors)")
        #expect(try Self.inode("/proc/self/fd/\(descriptors.first!)") == results[0].own, "it is the process's own namespace")
        #expect(results[0].own != podInode)
    }

    private static func inode(_ path: String) throws -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw CaptureError.system(operation: "stat \(path)", errno: errno) }
        return UInt64(info.st_ino)
    }

    /// Runs `body` on a new thread and waits for it.
    private static func onNewThread<R: Sendable>(_ body: @escaping @Sendable () throws -> R) throws -> R {
        let done = DispatchSemaphore(value: 0)
        let box = NIOLockedValueBox<Result<R, any Error>?>(nil)
        let thread = Thread {
            box.withLockedValue { $0 = Result { try body() } }
            done.signal()
        }
        thread.start()
        done.wait()
        return try box.withLockedValue { $0! }.get()
    }
}
