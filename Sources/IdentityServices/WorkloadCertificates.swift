import Foundation
import Logging
import MeshIdentity
import NIOConcurrencyHelpers

/// The X509-SVIDs of the workloads on one node, as ztunnel keeps them: each is
/// fetched the first time a connection needs it (so a node with 1,000 pods
/// sends no CSR before the first connection of one of them) or, earlier, by a
/// background ``prefetch(_:)`` that asks for one at a time (so a workload that
/// has not had a connection yet is still served while the CA is unreachable), renewed at half
/// its lifetime by an ``SVIDSource``, and dropped when no local workload has
/// that identity any more. Private keys are generated here and never leave
/// the node; only CSRs are sent.
///
/// ```swift
/// let certificates = WorkloadCertificates(trustDomain: td, bundles: bundles) { id in
///     IstioCAClient(servers: [.init(host: "istiod", port: 15012)], identity: nodeID, impersonate: id, makeTransportSecurity: nodeTLS)
/// }
/// let server = HBONEServer(identities: certificates, serverIdentity: { local in ... }, handler: handler)
/// await certificates.retain(identitiesOfLocalWorkloads)
/// ```
public actor WorkloadCertificates: MeshTLSProvider {
    /// Makes the provider that fetches (and renews) one identity's SVID.
    public typealias ProviderFactory = @Sendable (SPIFFEID) throws -> any SVIDProvider

    /// What is known of one identity's certificate.
    public struct Status: Sendable, Hashable {
        public var identity: SPIFFEID
        public var expiresAt: Date
        public var renewAt: Date
        /// False once renewal has stopped (it stops only when the certificate is dropped).
        public var renewing: Bool
    }

    /// CSRs sent to the CA for this node's workloads: first fetches, prefetches and renewals.
    public struct RequestCounts: Sendable, Hashable {
        /// Requests sent.
        public var sent = 0
        /// Requests that failed (the CA unreachable or refusing); a renewal that fails is retried with backoff.
        public var failed = 0
    }

    private struct Entry {
        let source: SVIDSource
        let tls: MeshTLS
        let renewal: Task<Void, Never>
    }

    private let domain: TrustDomain
    private let bundles: TrustBundleStore
    private let configuration: MeshTLSConfiguration
    private let makeProvider: ProviderFactory
    private let logger: Logger
    private var entries: [SPIFFEID: Entry] = [:]
    private var pending: [SPIFFEID: Task<Entry, any Error>] = [:]
    private var prefetching: Task<Void, Never>?
    private var closed = false
    private let counts = NIOLockedValueBox(RequestCounts())

    /// The CSRs sent so far (readable from any thread, for metrics).
    public nonisolated var requestCounts: RequestCounts { counts.withLockedValue { $0 } }

    public init(trustDomain: TrustDomain, bundles: TrustBundleStore, configuration: MeshTLSConfiguration = MeshTLSConfiguration(),
                logger: Logger = Logger(label: "swift-mesh.workload-certificates"), provider: @escaping ProviderFactory) {
        self.domain = trustDomain
        self.bundles = bundles
        self.configuration = configuration
        self.makeProvider = provider
        self.logger = logger
    }

    public nonisolated var defaultIdentity: SPIFFEID? { nil }

    public nonisolated var trustDomain: TrustDomain { domain }

    /// The MeshTLS presenting `identity`'s SVID, fetching it first if this node has none yet.
    /// Concurrent first uses of one identity share one CSR and one renewal.
    public func meshTLS(for identity: SPIFFEID?) async throws -> MeshTLS {
        guard let identity else { throw WorkloadCertificatesError.noIdentity }
        if let entry = entries[identity] { return entry.tls }
        guard !closed else { throw WorkloadCertificatesError.closed }
        guard identity.trustDomain == domain else { throw WorkloadCertificatesError.foreignTrustDomain(identity) }
        let task: Task<Entry, any Error>
        if let inFlight = pending[identity] {
            task = inFlight
        } else {
            task = Task { [makeProvider, bundles, configuration, logger, counts] in
                let provider = CountingSVIDProvider(base: try makeProvider(identity), counts: counts)
                let first = try await provider.fetchSVID()
                let source = SVIDSource(provider: provider, logger: logger)
                source.publish(first, obtainedAt: Date())
                let renewal = Task<Void, Never> { _ = try? await source.run() }
                return Entry(source: source, tls: MeshTLS(svids: source, bundles: bundles, configuration: configuration), renewal: renewal)
            }
            pending[identity] = task
        }
        let entry: Entry
        do {
            entry = try await task.value
        } catch {
            if pending[identity] == task {
                pending[identity] = nil
                logger.warning("workload certificate request failed", metadata: ["identity": "\(identity)", "error": "\(error)"])
            }
            throw error
        }
        // Every waiter of one fetch gets the same entry; only the first to resume may keep it,
        // and only while its renewal runs (a retain in between may have dropped and stopped it).
        let owner = pending[identity] == task
        if owner { pending[identity] = nil }
        if let existing = entries[identity] {
            if owner && existing.source !== entry.source { entry.renewal.cancel() }
            return existing.tls
        }
        guard owner, !entry.renewal.isCancelled else { return entry.tls }
        guard !closed else {
            entry.renewal.cancel()
            throw WorkloadCertificatesError.closed
        }
        entries[identity] = entry
        logger.info("workload certificate issued", metadata: ["identity": "\(identity)", "expires": "\(entry.source.current?.expiresAt.description ?? "-")"])
        return entry.tls
    }

    /// Keeps the certificates of `identities` only (the local workloads'); the
    /// others are dropped and their renewal stops.
    public func retain(_ identities: Set<SPIFFEID>) {
        for (identity, entry) in entries where !identities.contains(identity) {
            entry.renewal.cancel()
            entries[identity] = nil
            logger.info("workload certificate dropped: no local workload has this identity", metadata: ["identity": "\(identity)"])
        }
    }

    /// Fetches, in the background and one at a time, the certificates of `identities` this node does
    /// not hold yet (the local workloads'), so that they are there before a connection needs them and
    /// when the CA is unreachable. A connection's own fetch does not wait for these; a failed one is
    /// left for the next prefetch or the first connection. A new call replaces a running one.
    public func prefetch(_ identities: Set<SPIFFEID>) {
        prefetching?.cancel()
        guard !closed else { return }
        let missing = identities.filter { entries[$0] == nil && $0.trustDomain == domain }.sorted { $0.description < $1.description }
        guard !missing.isEmpty else { return }
        prefetching = Task { [weak self] in
            for identity in missing {
                guard !Task.isCancelled, let self else { return }
                _ = try? await self.meshTLS(for: identity)
            }
        }
    }

    /// The certificates held, by identity (expired ones too, while their renewal keeps trying).
    public func statuses() -> [Status] {
        entries.compactMap { identity, entry in
            entry.source.latest.map {
                Status(identity: identity, expiresAt: $0.expiresAt, renewAt: entry.source.renewalTime ?? $0.renewAt, renewing: !entry.renewal.isCancelled)
            }
        }.sorted { $0.identity.description < $1.identity.description }
    }

    /// Stops every renewal and drops every certificate.
    public func close() {
        closed = true
        prefetching?.cancel()
        for entry in entries.values { entry.renewal.cancel() }
        for task in pending.values { task.cancel() }
        entries = [:]
        pending = [:]
    }
}

/// Counts the requests a provider makes and those that fail.
private struct CountingSVIDProvider: SVIDProvider {
    let base: any SVIDProvider
    let counts: NIOLockedValueBox<WorkloadCertificates.RequestCounts>

    func fetchSVID() async throws -> X509SVID {
        counts.withLockedValue { $0.sent += 1 }
        do {
            return try await base.fetchSVID()
        } catch {
            if !(error is CancellationError) { counts.withLockedValue { $0.failed += 1 } }
            throw error
        }
    }
}

/// Why a workload certificate cannot be had.
public enum WorkloadCertificatesError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A connection named no identity to present.
    case noIdentity
    /// The identity is outside the node's trust domain.
    case foreignTrustDomain(SPIFFEID)
    /// The cache was closed (the proxy is shutting down).
    case closed

    public var description: String {
        switch self {
        case .noIdentity: return "no workload identity was named for this connection"
        case .foreignTrustDomain(let id): return "\(id) is outside this node's trust domain"
        case .closed: return "workload certificates are closed (shutting down)"
        }
    }
}
