import Foundation
import MeshLab
import MeshTestSupport
import Testing

/// Issue 16, part 4: components of the mesh killed or cut off under it, in labs
/// from Fixtures/ambient (their own prefix, so they run beside the other lab
/// suite's). What was already accepted must not be lost; what is new must work again.
///
/// The labs run two control-plane replicas, workload certificates of 40 s (renewed
/// at half-life, every 20 s) and keepalive PINGs every 2 s with a 3 s timeout, so
/// that rotation, CA outages and dead links happen within a test's time.
@Suite("Faults in the lab: control plane, CA, ztunnel and link", .serialized,
       .enabled(if: getuid() == 0 || Interop.isCI, "the lab needs root (network namespaces, iptables)"))
struct FaultLabTests {
    static let controlPlane = LabControlPlane(replicas: 2, arguments: ["--workload-cert-ttl", "40s"])
    static let ztunnelArguments = ["--keepalive-interval", "2", "--keepalive-timeout", "3"]

    static func start() async throws -> LabFixture {
        try await LabFixture.start("ambient", prefix: "swf", ztunnelArguments: ztunnelArguments, controlPlane: controlPlane)
    }

    @Test("""
        SIGKILL one control-plane replica: the ztunnels fail over to the other, which applies a change and signs a new pod's \
        certificate. SIGKILL both: traffic keeps its last good state; certificates past half-life fail to renew (metric, log) \
        and keep being used; restarted, the ztunnels reconnect and renew without a restart. SIGKILL a destination ztunnel: its \
        open connection ends at once; restarted, new connections succeed
        """)
    func killedComponents() async throws {
        let lab = try await Self.start()
        defer { lab.stop() }
        let processes = LabProcesses(layout: lab.lab.layout)
        let serverA = lab.pod("mesh/server-a"), serverB = lab.pod("mesh/server-b")
        let replica2 = Self.controlPlane.address(replica: 1, gateway: lab.topology.gatewayAddress)
        let first = try await lab.curl(from: "mesh/client", "http://\(serverB.address):8080/")
        #expect(first.http == "200", "before any fault: \(first)\n\(lab.componentLogs())")

        // 1. One replica dies mid-flight: both nodes move to the other.
        processes.sigkill("controlplane")
        #expect(processes.pid("controlplane") == nil)
        for node in ["node-a", "node-b"] {
            let failedOver = await eventually {
                (try? lab.lab.logs("ztunnel-\(node)")).map { $0.contains("ADS stream opening") && $0.contains("server=\(replica2)") } == true
            }
            #expect(failedOver, "\(node)'s ztunnel opens its ADS stream to the second replica (\(replica2))")
        }
        let admitted = try await lab.admitIntruder()
        #expect(admitted, "a policy change reaches the ztunnels through the second replica")
        try await lab.apply(file: "newcomer.yaml", Self.newcomer)
        let newcomer = lab.pod("mesh/newcomer")
        let reached = await lab.eventuallyOK(from: "mesh/client", "http://\(newcomer.address):8080/")
        #expect(reached, "a new pod is reached through the mesh: its ztunnel got a certificate from the second replica's CA")
        #expect(try lab.lab.logs("ztunnel-node-b").contains("spiffe://cluster.local/ns/mesh/sa/newcomer"),
                "node-b's ztunnel names the newcomer's identity")

        // 2. Both replicas die: no control plane, no CA. Traffic keeps the last good state.
        processes.sigkill("controlplane-2")
        for (target, what) in [(serverB, "across nodes"), (serverA, "on one node"), (newcomer, "to the newcomer")] {
            let answer = try await lab.curl(from: "mesh/client", "http://\(target.address):8080/")
            #expect(answer.http == "200", "client → \(target.name) \(what) with no control plane: \(answer)")
        }
        #expect(try await lab.curl(from: "mesh/intruder", "http://\(serverB.address):8080/").http == "200", "the last policy (intruder admitted) holds")
        #expect(try await lab.curl(from: "other/visitor", "http://\(serverB.address):8080/").http == "000", "and still denies the visitor")

        // 3. The CA stays unreachable past certificates' half-life: renewals fail, are counted and logged,
        // and the certificates keep being presented until they expire.
        let failedBefore = try await lab.metricTotal(node: "node-b", "istio_agent_num_failed_outgoing_requests_total")
        let renewalFailed = await eventually(bound: 40) {
            try? await Task.sleep(for: .milliseconds(500))
            return ((try? await lab.metricTotal(node: "node-b", "istio_agent_num_failed_outgoing_requests_total")) ?? 0) > failedBefore
        }
        #expect(renewalFailed, "node-b's ztunnel counts failed CSRs (istio_agent_num_failed_outgoing_requests_total)")
        #expect(try lab.lab.logs("ztunnel-node-b").contains("SVID renewal failed; retrying in"), "and logs the failure with its retry")
        let overdue = try await lab.certificates(node: "node-b").filter { $0.value.renewAt < Date() }
        #expect(!overdue.isEmpty, "some certificate on node-b is past half-life and not renewed")
        for target in [serverB, newcomer] {
            let answer = try await lab.curl(from: "mesh/client", "http://\(target.address):8080/")
            #expect(answer.http == "200", "client → \(target.name) with certificates past half-life and the CA down: \(answer)")
        }

        // Back: without restarting any ztunnel, they reconnect and every certificate is renewed.
        let ztunnelPIDs = ["node-a", "node-b"].map { processes.pid("ztunnel-\($0)") }
        try await Interop.onThread {
            try lab.lab.restart("controlplane")
            try lab.lab.restart("controlplane-2")
        }
        for node in ["node-a", "node-b"] {
            let renewed = await eventually(bound: 40) {
                try? await Task.sleep(for: .milliseconds(500))
                guard let held = try? await lab.certificates(node: node), !held.isEmpty else { return false }
                return held.values.allSatisfy { $0.renewAt > Date() }
            }
            let held = try await lab.certificates(node: node)
            #expect(renewed, "\(node)'s overdue certificates are renewed once the CA is back: \(held)")
        }
        #expect(["node-a", "node-b"].map { processes.pid("ztunnel-\($0)") } == ztunnelPIDs, "recovered without a ztunnel restart")
        #expect(try await lab.curl(from: "mesh/client", "http://\(newcomer.address):8080/").http == "200", "after the CA outage")
        print("fault: CA outage: \(overdue.count) certificate(s) on node-b past half-life while the CA was down; renewed after it came back")

        // 4. The destination's ztunnel dies under an open connection: the client learns at once.
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

        // node-a's ztunnel went through a failover and an outage; node-b's is a fresh client: same resources, same versions.
        let converged = await eventually {
            guard let a = try? await lab.xdsVersions(node: "node-a"), let b = try? await lab.xdsVersions(node: "node-b") else { return false }
            return !a.isEmpty && a == b
        }
        #expect(converged, "node-a reconverged to the resource versions a fresh client gets")
    }

    @Test("""
        The link between the nodes down for 10 s: the pooled connection is found dead by keepalive (counted, logged) and \
        traffic resumes after. Every workload certificate rotated while 1,000 tunnels carry traffic: no connection lost, \
        and a new connection is presented the new certificate (seen by openssl). The CA's root rotated (added, switched \
        to, old one dropped) while 200 tunnels carry traffic: none lost; new connections see the new root
        """)
    func linkDownAndRotationUnderLoad() async throws {
        let lab = try await Self.start()
        defer { lab.stop() }
        let serverB = lab.pod("mesh/server-b")
        let nodeB = lab.node("node-b")

        // 1. A pooled connection node-a → node-b, then the wire cut under it.
        let first = try await lab.curl(from: "mesh/client", "http://\(serverB.address):8080/")
        #expect(first.http == "200", "before the cut: \(first)\n\(lab.componentLogs())")
        let pool = try await lab.configDump(node: "node-a")["hbonePool"] as? [String: Any] ?? [:]
        #expect((pool["connections"] as? Int ?? 0) >= 1, "node-a pools a connection to node-b: \(pool)")
        let closuresBefore = pool["keepaliveClosures"] as? Int ?? 0
        let wire = lab.topology.wireNetns
        _ = try await lab.run(netns: wire, ["ip", "link", "set", nodeB.wireInterface, "down"])
        let cut = ContinuousClock.now
        let detected = await eventually(bound: 10) {
            try? await Task.sleep(for: .milliseconds(250))
            let pool = (try? await lab.configDump(node: "node-a"))?["hbonePool"] as? [String: Any]
            return (pool?["keepaliveClosures"] as? Int ?? 0) > closuresBefore
        }
        let detectedAfter = ContinuousClock.now - cut
        try await Task.sleep(until: cut + .seconds(10))
        _ = try await lab.run(netns: wire, ["ip", "link", "set", nodeB.wireInterface, "up"])
        #expect(detected, "node-a's ztunnel closes the dead pooled connection on an unanswered PING")
        #expect(try lab.lab.logs("ztunnel-node-a").contains("keepalive PING unanswered"), "and logs it")
        let resumed = await lab.eventuallyOK(from: "mesh/client", "http://\(serverB.address):8080/")
        #expect(resumed, "traffic resumes once the link is back")
        print("fault: link down 10 s: dead pooled connection detected after \(detectedAfter) (keepalive 2 s, timeout 3 s)")

        // 2. Rotation under load: 1,000 tunnels client (node-a) → echo (node-b), 1 KiB each way every 2 s for
        // 30 s. Certificates live 40 s and renew at half-life, so each is replaced at least once meanwhile.
        try await lab.apply(file: "echo.yaml", Self.echo)
        let echo = lab.pod("mesh/echo")
        let served = await eventually { (try? await lab.run(netns: lab.pod("mesh/client").netns, [
            "python3", "-c", "import socket; s = socket.create_connection(('\(echo.address)', 7000), timeout=3); s.sendall(b'x'); assert s.recv(1) == b'x'",
        ]))?.status == 0 }
        #expect(served, "the echo pod answers through the mesh")
        let presentedBefore = try await presentedCertificate(lab, echo.address)
        let echoID = "spiffe://cluster.local/ns/mesh/sa/echo", clientID = "spiffe://cluster.local/ns/mesh/sa/client"
        let load = try PeerProcess("/usr/bin/env", ["ip", "netns", "exec", lab.pod("mesh/client").netns, "python3", "-u",
                                                    Interop.script("soak_load.py"), "long", echo.address, "7000", "1000", "30", "2"])
        defer { load.stop() }
        #expect(await load.waitFor("held 1000", bound: 60), "1,000 tunnels open: \(load.text)")
        let before = (try await lab.certificates(node: "node-a")[clientID], try await lab.certificates(node: "node-b")[echoID])
        #expect(await load.waitFor("ok ", bound: 120), "the load finishes: \(load.text)")
        #expect(load.text.contains("ok 1000 failed 0"), "no tunnel lost or reset while certificates rotated: \(load.text)")
        let after = (try await lab.certificates(node: "node-a")[clientID], try await lab.certificates(node: "node-b")[echoID])
        #expect(before.0 != nil && before.1 != nil, "both identities hold certificates")
        if let old = before.0, let new = after.0 { #expect(new.expiresAt > old.expiresAt, "the client's certificate was replaced during the load") }
        if let old = before.1, let new = after.1 { #expect(new.expiresAt > old.expiresAt, "the echo pod's certificate was replaced during the load") }
        let presentedAfter = try await presentedCertificate(lab, echo.address)
        #expect(presentedBefore.serial != nil && presentedAfter.serial != nil, "openssl saw the certificate node-b presents: \(presentedAfter.text)")
        #expect(presentedAfter.serial != presentedBefore.serial, "a new connection is presented the new certificate")
        print("fault: rotation under 1,000 tunnels: \(load.text.split(separator: "\n").last ?? ""); serial \(presentedBefore.serial ?? "-") → \(presentedAfter.serial ?? "-")")

        // 3. Trust-bundle rotation under traffic: a new root added, made the signer, the old one dropped, while
        // 200 tunnels exchange 1 KiB every 2 s. Each step waits what `ca rotate` asks: half a certificate lifetime
        // after `add`, a whole one after `switch`.
        let rotating = try PeerProcess("/usr/bin/env", ["ip", "netns", "exec", lab.pod("mesh/client").netns, "python3", "-u",
                                                        Interop.script("soak_load.py"), "long", echo.address, "7000", "200", "100", "2"])
        defer { rotating.stop() }
        #expect(await rotating.waitFor("held 200", bound: 60), "200 tunnels open: \(rotating.text)")
        let oldRoot = try await subject(ofCertificate: lab.lab.layout.ca + "/ca.pem", lab)
        for (step, wait) in [("add", 25), ("switch", 45), ("finish", 25)] {
            let output = try await Interop.run(LabFixture.binaries + "/mesh-controlplane", ["ca", "rotate", step, "--dir", lab.lab.layout.ca])
            #expect(output.status == 0, "ca rotate \(step): \(output.combined)")
            try await Task.sleep(for: .seconds(wait))
        }
        let newRoot = try await subject(ofCertificate: lab.lab.layout.ca + "/ca.pem", lab)
        #expect(newRoot != oldRoot, "the signer's root changed: \(oldRoot) → \(newRoot)")
        #expect(await rotating.waitFor("ok ", bound: 60), "the load finishes: \(rotating.text)")
        #expect(rotating.text.contains("ok 200 failed 0"), "no tunnel lost or reset through the root rotation: \(rotating.text)")
        let afterRotation = try await lab.curl(from: "mesh/client", "http://\(serverB.address):8080/")
        #expect(afterRotation.http == "200", "a connection after the rotation: \(afterRotation)\n\(lab.tail("ztunnel-node-a"))\n\(lab.tail("ztunnel-node-b"))")
        let issuer = try await presentedCertificate(lab, echo.address).text
        #expect(issuer.contains("issuer=") && issuer.contains(newRoot.dropFirst("subject=".count)), "a new connection is presented a certificate of the new root: \(issuer)")
        for node in ["node-a", "node-b"] {
            let log = try lab.lab.logs("ztunnel-\(node)")
            #expect(log.contains("renewing the node credential"), "\(node)'s ztunnel renewed its node credential under the new root")
            #expect(log.contains("trust bundle updated from the CA"), "\(node)'s ztunnel followed the CA's roots")
            // Renewals go on after the old root is gone: each presents the node credential current then
            // (a CA client that kept the one it was created with was refused from here on).
            let held = try await lab.certificates(node: node)
            #expect(!held.isEmpty && held.values.allSatisfy { $0.renewAt > Date() }, "\(node)'s certificates keep renewing after finish: \(held)")
        }
        print("fault: trust-bundle rotation under 200 tunnels: \(rotating.text.split(separator: "\n").last ?? ""); \(oldRoot) → \(newRoot)")
    }

    /// `subject=…` of a PEM certificate file, as openssl prints it.
    private func subject(ofCertificate path: String, _ lab: LabFixture) async throws -> String {
        try await Interop.run("/usr/bin/env", ["openssl", "x509", "-in", path, "-noout", "-subject"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The certificate node-b's ztunnel presents for `address`'s HBONE port, as openssl sees it
    /// from node-a (the handshake then fails: openssl has no client certificate to give).
    private func presentedCertificate(_ lab: LabFixture, _ address: String) async throws -> (serial: String?, text: String) {
        let output = try await lab.run(netns: lab.node("node-a").netns, ["sh", "-c",
            "openssl s_client -connect \(address):15008 -alpn h2 </dev/null 2>/dev/null | openssl x509 -noout -serial -issuer -ext subjectAltName"])
        let serial = output.stdout.split(separator: "\n").first { $0.hasPrefix("serial=") }.map { String($0.dropFirst("serial=".count)) }
        return (serial, output.combined)
    }

    /// A pod on node-b with a service account no node holds a certificate for yet: HTTP on 8080, and
    /// on 7000 an echo that answers one connection at a time and holds it until the next arrives.
    static let newcomer = """
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
          - {name: http, command: ["python3", "-m", "http.server", "8080"], ports: [{containerPort: 8080}]}
          - name: echo
            command: ["python3", "-c"]
            args: ["import socket\\nserver = socket.create_server(('', 7000))\\nwhile True:\\n    connection, _ = server.accept()\\n    connection.sendall(connection.recv(64))"]
            ports: [{containerPort: 7000}]
        """

    /// An echo server on node-b for many concurrent connections (asyncio), port 7000.
    static let echo = """
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: echo, namespace: mesh}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: echo, namespace: mesh, labels: {app: echo}}
        spec:
          nodeName: node-b
          serviceAccountName: echo
          containers:
          - name: echo
            command: ["python3", "-c"]
            args:
            - |
              import asyncio, resource
              _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
              resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
              async def echo(reader, writer):
                  try:
                      while data := await reader.read(65536):
                          writer.write(data)
                          await writer.drain()
                  except ConnectionError:
                      pass
                  finally:
                      writer.close()
              async def main():
                  server = await asyncio.start_server(echo, "0.0.0.0", 7000, backlog=4096)
                  async with server:
                      await server.serve_forever()
              asyncio.run(main())
            ports: [{containerPort: 7000}]
        """
}
