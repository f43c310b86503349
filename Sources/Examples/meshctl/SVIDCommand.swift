import ArgumentParser
import Foundation
import MeshIdentity
import X509

struct SVIDCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svid",
        abstract: "Issue, inspect and verify X509-SVIDs.",
        subcommands: [Issue.self, Inspect.self, Verify.self]
    )

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue an SVID: writes svid.pem (chain), svid.key (PKCS#8, 0600), bundle.json and bundle.pem to --out."
        )

        @Option(help: "Directory of the CA (from `meshctl ca init`).") var ca: String
        @Option(help: "The SPIFFE ID to issue, e.g. spiffe://example.org/ns/default/sa/web.") var id: String
        @Option(help: "Lifetime, e.g. 1h or 30m.") var ttl: DurationArgument = DurationArgument(seconds: CertificateAuthority.defaultTTL)
        @Option(help: "Output directory.") var out: String

        func run() async throws {
            try await reportingErrors {
                let spiffeID = try SPIFFEID(id)
                let authority = try loadCA(directory: ca)
                let svid = try authority.issueSVID(for: spiffeID, ttl: ttl.seconds)
                try writeFile(out + "/svid.pem", svid.chainPEM())
                try writeFile(out + "/svid.key", svid.privateKeyPEM, secret: true)
                try writeBundle(authority.trustBundle, to: out)
                say("issued \(spiffeID) valid until \(svid.expiresAt) in \(out)")
            }
        }
    }

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the SPIFFE ID, validity and extensions of a certificate chain.")

        @Argument(help: "A PEM certificate chain, leaf first.") var file: String

        func run() async throws {
            try await reportingErrors {
                let chain = try CertificateCoding.certificates(pem: readFile(file, what: "certificate chain"))
                for (index, certificate) in chain.enumerated() {
                    say(index == 0 ? "leaf:" : "certificate \(index + 1):")
                    if index == 0 {
                        do {
                            say("  spiffe id:   \(try X509SVIDVerifier.spiffeID(ofLeaf: certificate))")
                        } catch {
                            say("  spiffe id:   (none: \(error))")
                        }
                    }
                    say("  subject:     \(certificate.subject)")
                    say("  issuer:      \(certificate.issuer)")
                    say("  serial:      \(certificate.serialNumber)")
                    say("  not before:  \(certificate.notValidBefore)")
                    say("  not after:   \(certificate.notValidAfter)")
                    let constraints = try certificate.extensions.basicConstraints
                    if case .isCertificateAuthority = constraints { say("  ca:          true") } else { say("  ca:          false") }
                    if let usage = try certificate.extensions.keyUsage { say("  key usage:   \(usage)") }
                    if let eku = try certificate.extensions.extendedKeyUsage { say("  ext usage:   \(eku)") }
                    if let sans = try certificate.extensions.subjectAlternativeNames { say("  sans:        \(sans)") }
                }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a chain as an X509-SVID against a SPIFFE bundle (exit 0 valid, 1 invalid with the reason, 2 unreadable)."
        )

        @Option(help: "A SPIFFE bundle (bundle.json).") var bundle: String
        @Option(help: "The bundle's trust domain (default: from its CA certificate).") var trustDomain: String?
        @Argument(help: "A PEM certificate chain, leaf first.") var file: String

        func run() async throws {
            try await reportingErrors {
                let chain = try CertificateCoding.certificates(pem: readFile(file, what: "certificate chain"))
                let bundleData = Data(try readFile(bundle, what: "bundle").utf8)
                let provisional = try TrustBundleCoding.decode(bundleData, trustDomain: .clusterLocal)
                let td: TrustDomain
                if let trustDomain {
                    td = try TrustDomain(trustDomain)
                } else if let inferred = provisional.authorities.first.flatMap(CertificateAuthority.trustDomain(ofAuthority:)) {
                    td = inferred
                } else {
                    throw CommandFailure(message: "error: cannot tell the bundle's trust domain; pass --trust-domain", code: 2)
                }
                var bundles = TrustBundleSet()
                bundles.insert(TrustBundle(trustDomain: td, authorities: provisional.authorities))
                do {
                    let verified = try X509SVIDVerifier().verify(chain: chain, bundles: bundles)
                    say("valid: \(verified.id) (chain of \(verified.path.count) to a root of \(td), expires \(chain[0].notValidAfter))")
                } catch {
                    throw CommandFailure(message: "invalid: \(error)", code: 1)
                }
            }
        }
    }
}
