import Crypto
import Foundation
import Synchronization

/// An immutable, validated set of resources for one node, grouped by type URL.
///
/// Building a snapshot rejects duplicate or empty names and resources filed
/// under the wrong type, so a server never serves an ambiguous state.
public struct XDSSnapshot: Sendable, Equatable {
    /// Resources by type URL, then by name.
    public let resources: [String: [String: XDSResource]]
    /// This snapshot's identity (unique in the process).
    let id: UInt64
    /// For a snapshot made by ``updating(upserting:removing:)``: the snapshot it was
    /// made from and the names it touched, per type URL, so a delta stream that
    /// holds the base can look at just those names instead of every resource.
    let derivation: Derivation?

    struct Derivation: Sendable {
        let baseID: UInt64
        let touched: [String: Set<String>]
    }

    private static let ids = Atomic<UInt64>(0)
    private static func nextID() -> UInt64 { ids.add(1, ordering: .relaxed).newValue }

    /// Snapshots are equal when they hold the same resources.
    public static func == (lhs: XDSSnapshot, rhs: XDSSnapshot) -> Bool { lhs.resources == rhs.resources }

    /// An empty snapshot (serves empty sets for every type).
    public init() { self.init(validated: [:], derivation: nil) }

    /// Builds a snapshot from resources; the type URL is taken from each resource.
    public init(_ list: [XDSResource]) throws(XDSServerError) {
        var byType: [String: [String: XDSResource]] = [:]
        for resource in list {
            guard !resource.name.isEmpty else { throw .emptyName(typeURL: resource.typeURL) }
            if byType[resource.typeURL, default: [:]][resource.name] != nil {
                throw .duplicateResource(typeURL: resource.typeURL, name: resource.name)
            }
            byType[resource.typeURL, default: [:]][resource.name] = resource
        }
        self.init(validated: byType, derivation: nil)
    }

    /// Builds a snapshot from resources grouped by type URL, checking each resource's type.
    public init(byType: [String: [XDSResource]]) throws(XDSServerError) {
        var all: [XDSResource] = []
        for (typeURL, list) in byType {
            for resource in list where resource.typeURL != typeURL {
                throw .typeMismatch(expected: typeURL, actual: resource.typeURL, name: resource.name)
            }
            all += list
        }
        try self.init(all)
    }

    private init(validated: [String: [String: XDSResource]], derivation: Derivation?) {
        self.resources = validated
        self.id = Self.nextID()
        self.derivation = derivation
    }

    /// A copy with `upserts` added or replacing same-named resources of their type, and
    /// `removals` (type URL and name) dropped. Costs one copy of the changed types' tables,
    /// so a control plane can apply one change to a large snapshot without rebuilding it.
    public func updating(upserting upserts: [XDSResource] = [], removing removals: [XDSResourceKey] = []) throws(XDSServerError) -> XDSSnapshot {
        var seen = Set<XDSResourceKey>()
        for resource in upserts {
            guard !resource.name.isEmpty else { throw .emptyName(typeURL: resource.typeURL) }
            guard seen.insert(XDSResourceKey(typeURL: resource.typeURL, name: resource.name)).inserted else {
                throw .duplicateResource(typeURL: resource.typeURL, name: resource.name)
            }
        }
        var next = resources
        var touched: [String: Set<String>] = [:]
        for key in removals {
            next[key.typeURL]?[key.name] = nil
            touched[key.typeURL, default: []].insert(key.name)
        }
        for resource in upserts {
            next[resource.typeURL, default: [:]][resource.name] = resource
            touched[resource.typeURL, default: []].insert(resource.name)
        }
        return XDSSnapshot(validated: next, derivation: Derivation(baseID: id, touched: touched))
    }

    /// What turns this snapshot into `other`: the resources that are new or whose
    /// content changed, and the keys that are gone. Feeding them to
    /// ``updating(upserting:removing:)`` (or the cache's `updateSnapshot`) lets delta
    /// streams look at just those names.
    public func changes(to other: XDSSnapshot) -> (upserts: [XDSResource], removals: [XDSResourceKey]) {
        var upserts: [XDSResource] = []
        var removals: [XDSResourceKey] = []
        for (typeURL, table) in other.resources {
            let before = resources[typeURL] ?? [:]
            upserts += table.values.filter { before[$0.name]?.version != $0.version }
        }
        for (typeURL, table) in resources {
            let after = other.resources[typeURL] ?? [:]
            removals += table.keys.filter { after[$0] == nil }.map { XDSResourceKey(typeURL: typeURL, name: $0) }
        }
        return (upserts, removals)
    }

    /// The resources of one type.
    public func resources(ofType typeURL: String) -> [String: XDSResource] {
        resources[typeURL] ?? [:]
    }

    /// The type URLs present in this snapshot.
    public var typeURLs: Set<String> { Set(resources.keys) }

    /// A version for a set of resources: a digest over their names and content versions.
    public static func version(of set: some Collection<XDSResource>) -> String {
        var hasher = SHA256()
        for resource in set.sorted(by: { $0.name < $1.name }) {
            hasher.update(data: Data(resource.name.utf8))
            hasher.update(data: Data([0]))
            hasher.update(data: Data(resource.version.utf8))
            hasher.update(data: Data([0]))
        }
        return hasher.finalize().prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}
