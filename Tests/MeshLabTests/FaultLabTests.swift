import Foundation
import MeshLab
import MeshTestSupport
import Testing

/// Issue 16, part 4: components of the mesh killed under it, in one lab from
/// Fixtures/ambient (its own prefix, so it runs beside the other lab suite's).
/// What was already accepted must not be lost; what is new must work again.
@Suite("Faults in the lab: control plane and ztunnel killed", .serialized,
       .enabled(if: getuid() == 0 || Interop.isCI, "the lab needs root (network namespaces, iptables)"))
struct FaultLabTests {
    @Test("SIGKILL the control plane: traffic keeps its last good state; restarted, the ztunnels reconnect, a change applies and a new pod gets its certificate. SIGKILL a destination ztunnel: its open connection ends at once; restarted, new connections succeed")
    func killedComponents() async throws {
        let lab = try await LabFixture.start("ambient", prefix: "swf")
        defer { lab.stop() }
        let processes = LabProcesses(layout: lab.lab.layout)
        let serverA = lab.pod("mesh/server-a"), serverB = lab.pod("mesh/server-b")
        #expect(try await lab.curl(from: "mesh/client", "http://\(serverB.address):8080/").http == "200", "before any fault")

        // 1. The control plane dies mid-flight: both nodes keep serving what they had.
        processes.sigkill("controlplane")
        #expect(processes.pid("controlplane") == nil)
        for (target, what) in [(serverB, "across nodes"), (serverA, "on one node")] {
            let answer = try await lab.curl(from: "mesh/client", "http://\(target.address):8080/")
            #expect(answer.http == "200", "client → \(target.name) \(what) with the control plane down: \(answer)")
        }
        let denied = try await lab.curl(from: "mesh/intruder", "http://\(serverB.address):8080/")
        #expect(denied.http == "000", "the last good policy still denies the intruder: \(denied)")
        #expect(await eventually { (try? lab.lab.logs("ztunnel-node-a"))?.contains("ADS stream ended; reconnecting") == true },
                "node-a's ztunnel notices and retries")

        // Back: the ztunnels reconnect by themselves; a policy change made now reaches them,
        // and a pod with a service account no node has a certificate for yet gets one.
        try await Interop.onThread { try lab.lab.restart("controlplane") }
        let admitted = try await lab.admitIntruder()
        #expect(admitted, "a policy change made after the restart takes effect")
        try await lab.apply(file: "newcomer.yaml", """
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: newcomer, namespace: mesh}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: newcomer, namespace: mesh, labels: {app: newcomer}}
            spec:
              nodeName: node-b
              serviceAccountName: newcomer
              containers:
              - {name: http, command: ["python3", "-m", "http.server", "8080"]}
              - name: echo
                command: ["python3", "-c"]
                args: ["import socket\\nserver = socket.create_server(('', 7000))\\nwhile True:\\n    connection, _ = server.accept()\\n    connection.sendall(connection.recv(64))"]
            """)
        let newcomer = lab.pod("mesh/newcomer")
        let reached = await lab.eventuallyOK(from: "mesh/client", "http://\(newcomer.address):8080/")
        #expect(reached, "a new pod is reached through the mesh: its ztunnel got a certificate from the restarted CA")
        #expect(try lab.lab.logs("ztunnel-node-b").contains("spiffe://cluster.local/ns/mesh/sa/newcomer"),
                "node-b's ztunnel names the newcomer's identity")

        // 2. The destination's ztunnel dies under an open connection: the client learns at once.
        // The newcomer's echo container answers once and keeps the connection open (until it accepts the next one).
        let held = try PeerProcess("/usr/bin/env", ["ip", "netns", "exec", lab.pod("mesh/client").netns, "python3", "-u", "-c", """
            import socket
            s = socket.create_connection(("\(newcomer.address)", 7000), timeout=5)
            s.sendall(b"ping")
            assert s.recv(64) == b"ping"
            print("connected", flush=True)
            s.settimeout(60)
            try:
                data = s.recv(1)
                print("ended", "eof" if not data else "data", flush=True)
            except OSError as error:
                print("ended", type(error).__name__, flush=True)
            """])
        defer { held.stop() }
        #expect(await held.waitFor("connected"), "an echo connection to the newcomer on node-b through the mesh: \(held.text)")
        processes.sigkill("ztunnel-node-b")
        #expect(await held.waitFor("ended"), "the open connection ends when the destination's ztunnel dies: \(held.text)")
        #expect(!held.text.contains("ended data"), "nothing but the end arrived: \(held.text)")
        let down = try await lab.curl(from: "mesh/client", "http://\(serverB.address):8080/")
        #expect(down.http == "000", "with node-b's ztunnel gone, server-b is unreachable: \(down)")

        // Restarted: its node agent enrolls the node's pods again; new connections succeed.
        try await Interop.onThread { try lab.lab.restart("ztunnel-node-b") }
        let ready = ContinuousClock.now
        let again = await lab.eventuallyOK(from: "mesh/client", "http://\(serverB.address):8080/")
        #expect(again, "client → server-b after node-b's ztunnel restarted")
        // Reported, not asserted (tests never assert on time): issue 16 asks for ≤ 1 s after readiness.
        print("fault: first connection to server-b succeeded \(ContinuousClock.now - ready) after node-b's ztunnel was ready")
        let stillDenied = try await lab.curl(from: "other/visitor", "http://\(serverB.address):8080/")
        #expect(stillDenied.http == "000", "policy is enforced again after the restart: \(stillDenied)")
    }
}
