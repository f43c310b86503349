import ArgumentParser
import Foundation
import MeshIdentity

struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Create a certificate authority.",
        subcommands: [Init.self]
    )

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a self-signed root CA: writes ca.pem, ca.key (0600) and bundle.json to --out."
        )

        @Option(help: "The trust domain, e.g. example.org.") var trustDomain: String
        @Option(help: "Output directory.") var out: String
        @Option(help: "Validity of the root (e.g. 8760h).") var validity: DurationArgument = DurationArgument(seconds: 365 * 86400)
        @Flag(help: "Overwrite an existing CA in --out.") var force = false

        func run() async throws {
            try await reportingErrors {
                let td = try TrustDomain(trustDomain)
                let keyPath = out + "/ca.key"
                if !force && FileManager.default.fileExists(atPath: keyPath) {
                    throw CommandFailure(message: "error: \(keyPath) exists; pass --force to replace the CA", code: 2)
                }
                let ca = try CertificateAuthority.selfSigned(trustDomain: td, validity: validity.seconds)
                try writeFile(out + "/ca.pem", ca.chainPEM())
                try writeFile(keyPath, ca.privateKeyPEM, secret: true)
                try writeBundle(ca.trustBundle, to: out)
                say("created CA for trust domain \(td) in \(out) (ca.pem, ca.key, bundle.json, bundle.pem)")
            }
        }
    }
}

/// Writes `bundle.json` (SPIFFE bundle) and `bundle.pem` (for openssl) to `directory`.
func writeBundle(_ bundle: TrustBundle, to directory: String) throws {
    try writeFile(directory + "/bundle.json", String(decoding: TrustBundleCoding.encode(bundle), as: UTF8.self) + "\n")
    try writeFile(directory + "/bundle.pem", bundle.authoritiesPEM())
}

/// Loads `ca.pem` + `ca.key` from a directory written by `meshctl ca init`.
func loadCA(directory: String) throws -> CertificateAuthority {
    try CertificateAuthority(
        chainPEM: readFile(directory + "/ca.pem", what: "CA certificate"),
        privateKeyPEM: readFile(directory + "/ca.key", what: "CA key")
    )
}
