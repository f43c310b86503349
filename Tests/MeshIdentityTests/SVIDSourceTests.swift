import Foundation
import MeshTestSupport
import NIOConcurrencyHelpers
import Testing
@testable import MeshIdentity

/// A provider whose answers the test scripts: succeed from the CA, or fail.
final class ScriptedProvider: SVIDProvider, Sendable {
    let authority: CertificateAuthority
    let id: SPIFFEID
    let clock: ManualClock
    let ttl: TimeInterval
    private let failing = NIOLockedValueBox(false)
    private let calls = NIOLockedValueBox(0)

    init(authority: CertificateAuthority, id: SPIFFEID, clock: ManualClock, ttl: TimeInterval) {
        self.authority = authority
        self.id = id
        self.clock = clock
        self.ttl = ttl
    }

    func setFailing(_ value: Bool) { failing.withLockedValue { $0 = value } }
    var callCount: Int { calls.withLockedValue { $0 } }

    struct Unavailable: Error {}

    func fetchSVID() async throws -> X509SVID {
        calls.withLockedValue { $0 += 1 }
        if failing.withLockedValue({ $0 }) { throw Unavailable() }
        return try authority.issueSVID(for: id, ttl: ttl, now: clock.now)
    }
}

@Suite("SVID rotation")
struct SVIDSourceTests {
    func setUp(ttl: TimeInterval = 3600) throws -> (ManualClock, ScriptedProvider, SVIDSource) {
        let clock = ManualClock(now: Date())
        let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"), now: clock.now)
        let provider = ScriptedProvider(authority: ca, id: try SPIFFEID("spiffe://example.org/w"), clock: clock, ttl: ttl)
        return (clock, provider, SVIDSource(provider: provider, clock: clock))
    }

    @Test("renews at half of the lifetime and publishes the new SVID")
    func renewsAtHalfLife() async throws {
        let (clock, provider, source) = try setUp()
        let task = Task { try await source.run() }
        defer { task.cancel() }
        let first = try await source.firstSVID()
        await clock.waitForSleepers()
        #expect(clock.sleepRequests.last == first.renewAt)
        #expect(provider.callCount == 1)

        var updates = source.updates().makeAsyncIterator()
        #expect(await updates.next() == first)  // the current value comes first
        // Just before the half-life nothing happens.
        clock.advance(to: first.renewAt.addingTimeInterval(-1))
        #expect(source.current == first)
        clock.advance(to: first.renewAt)
        let second = try #require(await updates.next())
        #expect(second != first)
        #expect(second.leaf.serialNumber != first.leaf.serialNumber)
        #expect(source.current == second)
        #expect(provider.callCount == 2)
    }

    @Test("a short SVID whose half-life its back-dated notBefore already passed renews at half of what is left, not in a loop")
    func backDatedShortLifetime() async throws {
        // The CA back-dates notBefore by 60 s: a 40 s certificate's nominal half-life is 10 s in the past.
        let (clock, provider, source) = try setUp(ttl: 40)
        let task = Task { try await source.run() }
        defer { task.cancel() }
        let first = try await source.firstSVID()
        #expect(first.renewAt < clock.now)
        await clock.waitForSleepers()
        #expect(provider.callCount == 1, "no second request at once")
        #expect(aboutTwentySeconds(after: clock.now, source.renewalTime))
        #expect(aboutTwentySeconds(after: clock.now, clock.sleepRequests.last))

        // Published by a caller who just obtained it: the same rule.
        let published = try await provider.fetchSVID()
        source.publish(published, obtainedAt: clock.now)
        #expect(aboutTwentySeconds(after: clock.now, source.renewalTime))
        // Published without saying when (a credential read from disk): its own half-life, even if past.
        source.publish(published)
        #expect(source.renewalTime == published.renewAt)
    }

    @Test("an SVID published out of turn with an earlier renewal time wakes the renewal loop, which renews it on time")
    func publishedOutOfTurn() async throws {
        let (clock, provider, source) = try setUp(ttl: 3600)
        let task = Task { try await source.run() }
        defer { task.cancel() }
        let first = try await source.firstSVID()
        await clock.waitForSleepers()
        #expect(clock.sleepRequests.last == first.renewAt)
        // A node credential renewed out of turn (a root rotation) with a 40 s life: renew it in about 20 s, not at the old half-life.
        let short = try await ScriptedProvider(authority: provider.authority, id: provider.id, clock: clock, ttl: 40).fetchSVID()
        source.publish(short, obtainedAt: clock.now)
        #expect(await eventually { aboutTwentySeconds(after: clock.now, clock.sleepRequests.last) },
                "the loop sleeps until the new SVID's renewal time: \(clock.sleepRequests)")
        await clock.waitForSleepers()
        var updates = source.updates().makeAsyncIterator()
        #expect(await updates.next() == short)
        clock.advance(to: clock.now.addingTimeInterval(21))
        let renewed = try #require(await updates.next())
        #expect(renewed != short)
        #expect(provider.callCount == 2)
    }

    @Test("backs off 0.5 s doubling to 150 s, keeps the old SVID until it expires")
    func backoffAndKeep() async throws {
        let (clock, provider, source) = try setUp(ttl: 3600)
        let task = Task { try await source.run() }
        defer { task.cancel() }
        let first = try await source.firstSVID()
        await clock.waitForSleepers()
        provider.setFailing(true)

        // At the half-life the renewal fails; each retry waits twice as long, up to 150 s.
        var now = first.renewAt
        clock.advance(to: now)
        var delays: [TimeInterval] = []
        for _ in 0..<11 {
            await clock.waitForSleepers()
            let deadline = try #require(clock.sleepRequests.last)
            delays.append(deadline.timeIntervalSince(now))
            #expect(source.current == first)  // still serving the old one
            now = deadline
            clock.advance(to: now)
        }
        #expect(delays == [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 150, 150])

        // Once it expires, there is no valid SVID while the provider keeps failing.
        await clock.waitForSleepers()
        clock.advance(to: first.expiresAt.addingTimeInterval(1))
        #expect(source.current == nil)
        #expect(throws: SVIDSourceError.noValidSVID) { try source.requireCurrent() }

        // Recovery resets the backoff and publishes.
        provider.setFailing(false)
        var updates = source.updates().makeAsyncIterator()
        await clock.waitForSleepers()
        clock.advance(to: clock.now.addingTimeInterval(150))
        let recovered = try #require(await updates.next())
        #expect(recovered.expiresAt > first.expiresAt)
        #expect(source.current == recovered)
    }

    @Test("a fixed SVID is served as is and run() returns")
    func fixed() async throws {
        let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        let svid = try ca.issueSVID(for: SPIFFEID("spiffe://example.org/x"))
        let source = SVIDSource(svid: svid)
        try await source.run()
        #expect(source.current == svid)
    }

    @Test("Backoff delays")
    func backoffValues() {
        let backoff = Backoff()
        #expect((0..<12).map(backoff.delay(attempt:)) == [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 150, 150, 150])
        #expect(Backoff(initial: 0.01, maximum: 15).delay(attempt: 100) == 15)
    }

    @Test("retry delays leave attempts before expiry, and are short once the SVID has expired")
    func retryDelays() {
        let now = Date()
        #expect(SVIDSource.retryDelay(8, until: now.addingTimeInterval(100), now: now) == 8)
        #expect(SVIDSource.retryDelay(150, until: now.addingTimeInterval(100), now: now) == 50, "at most half the time left")
        #expect(SVIDSource.retryDelay(4, until: now.addingTimeInterval(0.2), now: now) == 0.5, "never below 0.5 s")
        #expect(SVIDSource.retryDelay(150, until: nil, now: now) == 15, "expired: every 15 s at most")
        #expect(SVIDSource.retryDelay(2, until: nil, now: now) == 2)
    }
}

/// Whether `date` is about 20 s after `now` (half of a 40 s certificate; certificate times are whole seconds).
private func aboutTwentySeconds(after now: Date, _ date: Date?) -> Bool {
    date.map { abs($0.timeIntervalSince(now) - 20) < 1 } ?? false
}
