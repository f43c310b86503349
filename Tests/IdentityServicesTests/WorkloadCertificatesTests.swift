import Foundation
import IdentityServices
import MeshIdentity
import MeshTestSupport
import Synchronization
import Testing

/// Counts fetches; fails while `failing` is set.
private final class CountingProvider: SVIDProvider, Sendable {
    let authority: CertificateAuthority
    let id: SPIFFEID
    let fetches = Atomic<Int>(0)
    let failing = Atomic<Bool>(false)

    init(authority: CertificateAuthority, id: SPIFFEID) {
        self.authority = authority
        self.id = id
    }

    func fetchSVID() async throws -> X509SVID {
        fetches.add(1, ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(20))  // let concurrent callers pile up
        if failing.load(ordering: .relaxed) { throw CertificateAuthorityError.malformedCSR("refused by the test") }
        return try authority.issueSVID(for: id)
    }
}

@Suite("WorkloadCertificates: per-workload SVIDs on a node")
struct WorkloadCertificatesTests {
    let authority = try! CertificateAuthority.selfSigned(trustDomain: TrustDomain("cluster.local"))
    let echo = try! SPIFFEID("spiffe://cluster.local/ns/demo/sa/echo")

    @Test("concurrent first uses of one identity share one fetch, and its renewal keeps running")
    func concurrentFirstUse() async throws {
        let provider = CountingProvider(authority: authority, id: echo)
        let certificates = WorkloadCertificates(trustDomain: authority.trustDomain, bundles: TrustBundleStore(authority.trustBundle)) { _ in provider }
        let results = try await withThrowingTaskGroup(of: SPIFFEID?.self) { group in
            for _ in 0..<20 { group.addTask { try await certificates.meshTLS(for: self.echo).svids.current?.id } }
            return try await group.reduce(into: [SPIFFEID?]()) { $0.append($1) }
        }
        #expect(results.count == 20 && results.allSatisfy { $0 == echo })
        #expect(provider.fetches.load(ordering: .relaxed) == 1)
        let statuses = await certificates.statuses()
        #expect(statuses.map(\.identity) == [echo] && statuses.allSatisfy(\.renewing))
        await certificates.close()
    }

    @Test("prefetch fetches the identities not held yet, one at a time, without a connection asking; a later use fetches nothing more")
    func prefetch() async throws {
        let provider = CountingProvider(authority: authority, id: echo)
        let certificates = WorkloadCertificates(trustDomain: authority.trustDomain, bundles: TrustBundleStore(authority.trustBundle)) { _ in provider }
        await certificates.prefetch([echo, try SPIFFEID("spiffe://other.org/ns/a/sa/b")])
        #expect(await eventually { await certificates.statuses().map(\.identity) == [self.echo] }, "echo's certificate arrives without a connection")
        _ = try await certificates.meshTLS(for: echo)
        #expect(provider.fetches.load(ordering: .relaxed) == 1, "the other trust domain is skipped and the use finds it held")
        await certificates.prefetch([echo])
        #expect(provider.fetches.load(ordering: .relaxed) == 1, "a held identity is not fetched again")
        await certificates.close()
    }

    @Test("a failed fetch is reported and retried on the next use; retain drops other identities; close refuses more")
    func failureRetainClose() async throws {
        let provider = CountingProvider(authority: authority, id: echo)
        provider.failing.store(true, ordering: .relaxed)
        let certificates = WorkloadCertificates(trustDomain: authority.trustDomain, bundles: TrustBundleStore(authority.trustBundle)) { _ in provider }
        await #expect(throws: CertificateAuthorityError.self) { _ = try await certificates.meshTLS(for: echo) }
        provider.failing.store(false, ordering: .relaxed)
        _ = try await certificates.meshTLS(for: echo)
        #expect(provider.fetches.load(ordering: .relaxed) == 2)
        await #expect(throws: WorkloadCertificatesError.foreignTrustDomain(try SPIFFEID("spiffe://other.org/ns/a/sa/b"))) {
            _ = try await certificates.meshTLS(for: try SPIFFEID("spiffe://other.org/ns/a/sa/b"))
        }
        await certificates.retain([])
        #expect(await certificates.statuses().isEmpty)
        await certificates.close()
        await #expect(throws: WorkloadCertificatesError.closed) { _ = try await certificates.meshTLS(for: echo) }
    }
}
