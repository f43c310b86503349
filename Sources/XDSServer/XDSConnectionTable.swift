import Foundation
import MeshProto
import NIOConcurrencyHelpers
import Synchronization

/// What an ``XDSServer`` knows of one connected ADS stream: who it is and,
/// per type, what was last sent and what the client last acknowledged (the
/// content of istiod's `/debug/syncz`).
public struct XDSConnectionStatus: Sendable, Hashable {
    /// One type URL on the stream.
    public struct TypeStatus: Sendable, Hashable {
        /// The version and nonce of the last response sent.
        public var sentVersion: String = ""
        public var sentNonce: String = ""
        /// The version and nonce the client last acknowledged.
        public var ackedVersion: String = ""
        public var ackedNonce: String = ""
        /// The `error_detail` of the client's last NACK, cleared by the next ACK.
        public var lastNack: String?

        /// True when the client acknowledged the last response sent.
        public var synced: Bool { !sentNonce.isEmpty && sentNonce == ackedNonce }
    }

    /// A server-assigned stream ID.
    public var id: UInt64
    /// The client's `node.id`.
    public var nodeID: String
    /// `sotw` or `delta`.
    public var variant: String
    public var connectedAt: Date
    /// Status by type URL.
    public var types: [String: TypeStatus]
}

/// Hooks for metrics on an ``XDSServer``'s traffic; every method has a no-op default.
public protocol XDSServerObserver: Sendable {
    /// A response of `typeURL` was written to a client.
    func pushed(typeURL: String)
    /// A client acknowledged a response of `typeURL`, `delay` after it was sent.
    func acknowledged(typeURL: String, delay: Duration)
    /// A client rejected a response of `typeURL`.
    func rejected(typeURL: String, detail: String)
}

extension XDSServerObserver {
    public func pushed(typeURL: String) {}
    public func acknowledged(typeURL: String, delay: Duration) {}
    public func rejected(typeURL: String, detail: String) {}
}

/// The live streams of a server, updated by the stream loops.
final class XDSConnectionTable: Sendable {
    private struct Pending: Sendable {
        let typeURL: String
        let version: String
        let sentAt: ContinuousClock.Instant
    }

    private struct Entry: Sendable {
        var status: XDSConnectionStatus
        var pending: [String: Pending] = [:]
    }

    private let entries = NIOLockedValueBox<[UInt64: Entry]>([:])
    private let nextID = Atomic<UInt64>(1)

    func open(variant: String) -> UInt64 {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        entries.withLockedValue { $0[id] = Entry(status: XDSConnectionStatus(id: id, nodeID: "", variant: variant, connectedAt: Date(), types: [:])) }
        return id
    }

    func close(_ id: UInt64) { _ = entries.withLockedValue { $0.removeValue(forKey: id) } }

    func identify(_ id: UInt64, nodeID: String) { entries.withLockedValue { $0[id]?.status.nodeID = nodeID } }

    func sent(_ id: UInt64, typeURL: String, version: String, nonce: String) {
        entries.withLockedValue { all in
            guard var entry = all[id] else { return }
            entry.status.types[typeURL, default: .init()].sentVersion = version
            entry.status.types[typeURL, default: .init()].sentNonce = nonce
            // Keep the newest unanswered response per type only, so a client that never answers costs nothing more.
            entry.pending = entry.pending.filter { $0.value.typeURL != typeURL }
            entry.pending[nonce] = Pending(typeURL: typeURL, version: version, sentAt: .now)
            all[id] = entry
        }
    }

    /// Records the answer to `nonce`; returns how long after sending it came (nil for an unknown nonce).
    func answered(_ id: UInt64, nonce: String, nack: String?) -> (typeURL: String, delay: Duration)? {
        entries.withLockedValue { all -> (typeURL: String, delay: Duration)? in
            guard var entry = all[id], let pending = entry.pending.removeValue(forKey: nonce) else { return nil }
            // Older unanswered nonces of the same type are superseded.
            entry.pending = entry.pending.filter { $0.value.typeURL != pending.typeURL || $0.value.sentAt > pending.sentAt }
            var status = entry.status.types[pending.typeURL] ?? .init()
            if let nack {
                status.lastNack = nack
            } else {
                status.ackedVersion = pending.version
                status.ackedNonce = nonce
                status.lastNack = nil
            }
            entry.status.types[pending.typeURL] = status
            all[id] = entry
            return (pending.typeURL, .now - pending.sentAt)
        }
    }

    func snapshot() -> [XDSConnectionStatus] {
        entries.withLockedValue { $0.values.map(\.status) }.sorted { $0.id < $1.id }
    }
}
