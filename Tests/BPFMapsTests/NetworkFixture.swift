#if os(Linux)
import BPFMaps
import Foundation
import Testing

/// Two network namespaces joined by a veth pair, with unique names per test:
///   server: namespace `<a>`, interface `<va>`, 10.199.1.1/24, fd99::1/64
///   client: namespace `<b>`, interface `<vb>`, 10.199.1.2/24, fd99::2/64
/// ``remove()`` deletes both namespaces (and with them the veths, tc hooks
/// and listeners' sockets); call it in a `defer`.
final class VethPair {
    let suffix = uniqueSuffix()
    var serverNamespace: String { "smA" + suffix }
    var clientNamespace: String { "smB" + suffix }
    var serverInterface: String { "va" + suffix }
    var clientInterface: String { "vb" + suffix }
    var serverNamespacePath: String { "/var/run/netns/" + serverNamespace }
    var clientNamespacePath: String { "/var/run/netns/" + clientNamespace }
    let serverIPv4 = "10.199.1.1"
    let clientIPv4 = "10.199.1.2"
    let serverIPv6 = "fd99::1"
    let clientIPv6 = "fd99::2"
    private var servers: [Process] = []

    init() throws {
        do {
            try runChecked(["ip", "netns", "add", serverNamespace])
            try runChecked(["ip", "netns", "add", clientNamespace])
            try runChecked(["ip", "link", "add", serverInterface, "type", "veth", "peer", "name", clientInterface])
            try runChecked(["ip", "link", "set", serverInterface, "netns", serverNamespace])
            try runChecked(["ip", "link", "set", clientInterface, "netns", clientNamespace])
            for (ns, dev, v4, v6) in [(serverNamespace, serverInterface, serverIPv4, serverIPv6),
                                      (clientNamespace, clientInterface, clientIPv4, clientIPv6)] {
                try runChecked(["ip", "-n", ns, "link", "set", "lo", "up"])
                try runChecked(["ip", "-n", ns, "addr", "add", v4 + "/24", "dev", dev])
                try runChecked(["ip", "-n", ns, "addr", "add", v6 + "/64", "dev", dev, "nodad"])
                try runChecked(["ip", "-n", ns, "link", "set", dev, "up"])
            }
        } catch {
            remove()
            throw error
        }
    }

    /// Starts a TCP server in the server namespace that answers "ok" on every
    /// connection to each of `ports` (IPv4 and IPv6), and waits until it listens.
    func startServer(ports: [UInt16]) throws {
        let script = """
        import socket, selectors, sys
        sel = selectors.DefaultSelector()
        for p in map(int, sys.argv[1:]):
            for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                s = socket.socket(fam, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((host, p)); s.listen(64); sel.register(s, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                c, _ = key.fileobj.accept()
                try: c.sendall(b"ok\\n")
                finally: c.close()
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ip", "netns", "exec", serverNamespace, "python3", "-c", script] + ports.map(String.init)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        servers.append(p)
        // Wait (bounded) until every port listens.
        for _ in 0..<100 {
            let out = try run(["ip", "netns", "exec", serverNamespace, "ss", "-Htln"]).stdout
            if ports.allSatisfy({ out.contains(":\($0) ") }) { return }
            usleep(50_000)
        }
        Issue.record("server did not start listening on \(ports)")
        throw CommandFailed(command: "server")
    }

    /// Connects from the client namespace to `host:port`; true when the
    /// connection was established and the server's "ok" arrived.
    /// A dropped SYN shows up as a connect timeout (1 s), not as a test time assertion.
    func connect(to host: String, port: UInt16, timeout: Double = 1.0) throws -> Bool {
        let r = try run(["ip", "netns", "exec", clientNamespace, "python3", "-c", Self.clientScript, host, String(port), String(timeout)])
        return Self.receivedOK(r)
    }

    /// The Python client of ``connect(to:port:timeout:)`` (arguments: host,
    /// port, connect timeout in seconds); prints the server's "ok" or "fail ...".
    static let clientScript = """
    import socket, sys
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
        s.settimeout(10)  # connected: wait generously for the server under load
        print(s.recv(16).decode().strip())
    except OSError as e:
        print("fail", e)
    """

    /// Whether a run of ``clientScript`` got the server's "ok".
    static func receivedOK(_ result: CommandResult) -> Bool {
        result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok"
    }

    /// Stops the servers and deletes both namespaces.
    func remove() {
        for p in servers where p.isRunning {
            // SIGKILL: Foundation starts children with most signals blocked, SIGTERM included.
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        servers.removeAll()
        _ = try? run(["ip", "netns", "del", serverNamespace])
        _ = try? run(["ip", "netns", "del", clientNamespace])
    }
}

extension EndpointDatapath {
    /// `mesh_tc.o` loaded as the node agent loads it, with the node-wide maps
    /// pinned under `pins` (a unique root per test).
    convenience init(pins: PinDirectory) throws {
        try self.init(objectPath: try Environment.object("mesh_tc"), pinRoot: pins.path)
    }

    /// Packets counted for `verdict`, summed over CPUs.
    func count(_ verdict: BPFVerdict) throws -> UInt64 {
        try verdictCounts()[verdict]?.packets ?? 0
    }

    /// Maps the host address `ip` to `identity` in the ipcache.
    func setIdentity(_ ip: String, identity: UInt32, node: UInt32 = 0, incarnation: UInt64) throws {
        try ipcache.update(mesh_ipcache_key(host: try addr(ip)), mesh_ipcache_value(identity: identity, node_id: node, incarnation: incarnation))
    }
}
#endif
