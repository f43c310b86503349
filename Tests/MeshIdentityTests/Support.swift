import Foundation
import NIOConcurrencyHelpers
import X509
import SwiftASN1
import Crypto
@testable import MeshIdentity

/// A clock that only moves when a test advances it.
final class ManualClock: MeshClock, @unchecked Sendable {
    private struct Sleeper {
        let deadline: Date
        let continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var now: Date
        var sleepers: [UUID: Sleeper] = [:]
        var sleepRequests: [Date] = []
    }
    private let state: NIOLockedValueBox<State>

    init(now: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        state = NIOLockedValueBox(State(now: now))
    }

    var now: Date { state.withLockedValue { $0.now } }

    /// Every deadline anyone asked to sleep until, in order.
    var sleepRequests: [Date] { state.withLockedValue { $0.sleepRequests } }

    var sleeperCount: Int { state.withLockedValue { $0.sleepers.count } }

    func sleep(until deadline: Date) async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLockedValue { state -> Bool in
                    state.sleepRequests.append(deadline)
                    if deadline <= state.now { return true }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLockedValue { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time to `date` and wakes every sleeper whose deadline has passed.
    func advance(to date: Date) {
        let due = state.withLockedValue { state -> [Sleeper] in
            state.now = date
            let due = state.sleepers.filter { $0.value.deadline <= date }
            for key in due.keys { state.sleepers.removeValue(forKey: key) }
            return Array(due.values)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Waits (without wall-clock assertions) until someone is sleeping on this clock.
    func waitForSleepers(_ count: Int = 1) async {
        while sleeperCount < count { await Task.yield(); try? await Task.sleep(nanoseconds: 1_000_000) }
    }
}

/// A root CA whose key the tests hold, to craft certificates that break one rule each.
struct TestPKI {
    let trustDomain: TrustDomain
    let rootKey: P256.Signing.PrivateKey
    let root: Certificate
    let authority: CertificateAuthority

    init(trustDomain: String = "example.org", now: Date = Date()) throws {
        let td = try TrustDomain(trustDomain)
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName(trustDomain)
            CommonName("test root \(UUID().uuidString.prefix(8))")
        }
        root = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(365 * 24 * 3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key)
        )
        rootKey = key
        trustDomain_ = td
        self.trustDomain = td
        authority = try CertificateAuthority(chain: [root], privateKey: key, trustDomain: td)
    }
    private var trustDomain_: TrustDomain

    var bundles: TrustBundleSet { TrustBundleSet([authority.trustBundle]) }

    /// A leaf signed by the root with the given properties.
    func leaf(
        uris: [String] = ["spiffe://example.org/workload"],
        isCA: Bool = false,
        keyUsage: KeyUsage? = KeyUsage(digitalSignature: true),
        notBefore: Date = Date().addingTimeInterval(-60),
        notAfter: Date = Date().addingTimeInterval(3600),
        signer: (key: P256.Signing.PrivateKey, name: DistinguishedName)? = nil
    ) throws -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let extensions = try Certificate.Extensions {
            if isCA {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            } else {
                Critical(BasicConstraints.notCertificateAuthority)
            }
            if let keyUsage { Critical(keyUsage) }
            if !uris.isEmpty { SubjectAlternativeNames(uris.map { .uniformResourceIdentifier($0) }) }
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: signer?.name ?? root.subject,
            subject: try DistinguishedName { CommonName("leaf") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: .init(signer?.key ?? rootKey)
        )
        return (certificate, key)
    }

    /// An intermediate signed by the root.
    func intermediate(isCA: Bool = true, keyCertSign: Bool = true) throws -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("intermediate \(UUID().uuidString.prefix(8))") }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-3600),
            notValidAfter: Date().addingTimeInterval(3600 * 24),
            issuer: root.subject,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                if isCA {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                } else {
                    Critical(BasicConstraints.notCertificateAuthority)
                }
                Critical(KeyUsage(digitalSignature: true, keyCertSign: keyCertSign))
            },
            issuerPrivateKey: .init(rootKey)
        )
        return (certificate, key)
    }
}


/// A temporary directory removed when the value is dropped by `defer`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "mesh-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: file(name), atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
