import ArgumentParser
import Foundation
import Logging
import PolicyEngine

/// `meshctl policy`: inspect how the policy engine decides traffic.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Evaluate Istio, Kubernetes and Cilium policies offline.",
        subcommands: [Check.self]
    )

    /// `meshctl policy check`: one decision, with the policy and rule that made it.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decide one connection (or HTTP request) against a directory of manifests.",
            discussion: """
                The directory holds Kubernetes YAML: AuthorizationPolicy, NetworkPolicy, \
                CiliumNetworkPolicy and the Namespaces and Pods (labels, service account, \
                named ports, status.podIP) they apply to. --from and --to take NS/POD or an \
                IP address. With --method or --path the decision is made at L7 (waypoint); \
                otherwise at L4 (ztunnel and the network datapath).
                """
        )

        @Option(name: .long, help: "Directory of YAML manifests.")
        var policies: String

        @Option(name: .long, help: "Source: NS/POD or an IP address.")
        var from: String

        @Option(name: .long, help: "Destination: NS/POD or an IP address.")
        var to: String

        @Option(name: .long, help: "Destination port.")
        var port: UInt16

        @Option(name: .long, help: "TCP, UDP or SCTP.")
        var `protocol`: String = "TCP"

        @Option(name: .long, help: "HTTP method (makes the check L7).")
        var method: String?

        @Option(name: .long, help: "HTTP path (makes the check L7).")
        var path: String?

        @Option(name: .long, help: "HTTP host / :authority.")
        var host: String?

        @Option(name: .long, help: "HTTP header as 'Name: value' (repeatable).")
        var header: [String] = []

        @Flag(name: .long, help: "The source has no mTLS identity (plaintext).")
        var plaintext = false

        @Option(name: .long, help: "Trust domain of workload principals.")
        var trustDomain = "cluster.local"

        @Flag(name: .long, help: "Exit with status 3 when the decision is DENY.")
        var failOnDeny = false

        func run() async throws {
            do {
                let output = try evaluate()
                print(output.text)
                if failOnDeny && output.verdict == .deny { throw ExitCode(3) }
            } catch let error as PolicyCheckError {
                FileHandle.standardError.write(Data("meshctl policy check: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
        }

        struct PolicyCheckError: Error {
            var message: String
        }

        func evaluate() throws(PolicyCheckError) -> (text: String, verdict: Verdict) {
            let bundle: PolicyBundle
            var logger = Logger(label: "meshctl.policy")
            logger.logLevel = .error  // skipped documents are reported in the output instead
            do { bundle = try ManifestLoader(logger: logger).load(directory: policies) } catch {
                throw PolicyCheckError(message: error.description)
            }
            let set: PolicySet
            do { set = try PolicySet(bundle: bundle, options: .init(trustDomain: trustDomain), logger: logger) } catch {
                throw PolicyCheckError(message: error.description)
            }
            guard let proto = TransportProtocol(rawValue: `protocol`.uppercased()) else {
                throw PolicyCheckError(message: "unknown protocol '\(`protocol`)' (expected TCP, UDP or SCTP)")
            }
            let source = try peer(from, in: set.inventory, flag: "--from")
            let destination = try peer(to, in: set.inventory, flag: "--to")
            var principal: String?
            if !plaintext, let w = set.normalize(source).workload { principal = w.principal(trustDomain: trustDomain) }
            let connection = Connection(source: source, destination: destination, destinationPort: port, protocol: proto,
                                        sourcePrincipal: principal)
            let decision: Decision
            let what: String
            if method != nil || path != nil || host != nil || !header.isEmpty {
                var headers: [String: String] = [:]
                for h in header {
                    guard let colon = h.firstIndex(of: ":") else {
                        throw PolicyCheckError(message: "header '\(h)' is not 'Name: value'")
                    }
                    headers[String(h[..<colon]).trimmingCharacters(in: .whitespaces)] =
                        String(h[h.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                }
                let request = HTTPRequest(connection: connection, method: method ?? "GET", path: path ?? "/",
                                          host: host ?? "", headers: headers)
                decision = set.decide(request)
                what = "\(request.method) \(request.path) "
            } else {
                decision = set.decide(connection)
                what = ""
            }
            var lines = ["\(decision.verdict) \(what)\(set.normalize(source)) -> \(set.normalize(destination)):\(port)/\(proto)"]
            lines.append("  decided by  \(decision.decidedBy)")
            if let e = decision.egress { lines.append("  egress      \(e.summary)  (network policy at the source)") }
            if let i = decision.ingress { lines.append("  ingress     \(i.summary)  (network policy at the destination)") }
            if let a = decision.authorization { lines.append("  authz       \(a.summary)  (Istio at the destination, \(what.isEmpty ? "L4" : "L7"))") }
            if let audit = decision.audit { lines.append("  audit       \(audit)") }
            if !bundle.skipped.isEmpty { lines.append("  (skipped \(bundle.skipped.count) document(s) of other kinds)") }
            return (lines.joined(separator: "\n"), decision.verdict)
        }

        private func peer(_ text: String, in inventory: Inventory, flag: String) throws(PolicyCheckError) -> Peer {
            guard let peer = inventory.peer(text) else {
                throw PolicyCheckError(message: "\(flag) '\(text)' is neither NS/POD of a Pod in the manifests nor an IP address")
            }
            return peer
        }
    }
}
