import ArgumentParser
import MeshIdentity

struct IDCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "id",
        abstract: "Work with SPIFFE IDs.",
        subcommands: [Parse.self]
    )

    struct Parse: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a SPIFFE ID and show its parts (exit 1 when invalid).")

        @Argument(help: "A SPIFFE ID, e.g. spiffe://cluster.local/ns/default/sa/web.") var id: String

        func run() async throws {
            try await reportingErrors {
                let parsed: SPIFFEID
                do {
                    parsed = try SPIFFEID(id)
                } catch {
                    throw CommandFailure(message: "\(error)", code: 1)
                }
                say("spiffe id:     \(parsed)")
                say("trust domain:  \(parsed.trustDomain)")
                say("path:          \(parsed.path.isEmpty ? "(none: trust domain ID)" : parsed.path)")
                if let istio = parsed.istioIdentity {
                    say("istio:         namespace \(istio.namespace), service account \(istio.serviceAccount)")
                }
            }
        }
    }
}
