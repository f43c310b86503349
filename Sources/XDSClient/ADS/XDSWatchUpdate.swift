import SwiftProtobuf

typealias SwiftProtobufAny = Google_Protobuf_Any

/// One consistent state of a watched resource type: the full current set of
/// resources, plus what changed since the previous update of the same watch.
///
/// Reading one resource by name is O(1); ``resources`` builds a typed
/// dictionary of the whole set, so large consumers (a 100,000-workload store)
/// should read ``updated`` names by subscript instead.
public struct XDSWatchUpdate<Value: Sendable>: Sendable {
    /// The type URL watched.
    public let typeURL: String
    /// The version of the last accepted response (`version_info` in state of
    /// the world, `system_version_info` in delta; may be empty).
    public let version: String
    /// Names added or changed by this update (every name in the first update of a watch).
    public let updated: Set<String>
    /// Names removed by this update (by the server, or by unsubscribing).
    public let removed: Set<String>
    /// Named subscriptions the server said nothing about within the does-not-exist
    /// timeout, or that a complete state-of-the-world response left out.
    public let doesNotExist: Set<String>
    let entries: [String: CachedResource]
    let values: [String: any Sendable]

    init(_ change: TypeChange) {
        self.typeURL = change.typeURL
        self.version = change.version
        self.updated = change.updated
        self.removed = change.removed
        self.doesNotExist = change.doesNotExist
        self.entries = change.entries
        self.values = change.values
    }

    /// The resource named `name`, if present. For a type that does not retain
    /// values (``XDSResourceType/retainingValues(_:)``), only ``updated`` names have one.
    public subscript(name: String) -> Value? { (values[name] ?? entries[name]?.value) as? Value }
    /// The per-resource version the server gave `name` (delta), or the response version (state of the world).
    public func version(of name: String) -> String? { entries[name]?.version }
    /// The names of every current resource.
    public var names: Set<String> { Set(entries.keys) }
    /// How many resources are current.
    public var count: Int { entries.count }
    /// Every current resource by name (for a type that does not retain values, the updated ones).
    public var resources: [String: Value] {
        entries.compactMapValues { $0.value as? Value }.merging(values.compactMapValues { $0 as? Value }) { _, new in new }
    }
}

/// A decoded resource as the client caches it.
struct CachedResource: Sendable {
    var version: String
    /// nil for a type that does not retain values.
    var value: (any Sendable)?
}

/// What one accepted response (or a does-not-exist timeout) did to a type.
struct TypeChange: Sendable {
    var typeURL: String
    var version: String
    var updated: Set<String> = []
    var removed: Set<String> = []
    var doesNotExist: Set<String> = []
    var entries: [String: CachedResource]
    /// The values of the updated resources (always present, also for types that do not retain values).
    var values: [String: any Sendable] = [:]

    var isEmpty: Bool { updated.isEmpty && removed.isEmpty && doesNotExist.isEmpty }
}

/// An ``XDSResourceType`` with its value type erased, as the protocol state stores it.
struct ErasedResourceType: Sendable {
    let typeURL: String
    let stateOfTheWorldIsComplete: Bool
    let retainsValues: Bool
    /// Decodes and validates one resource; `name` is the wrapper's name when the resource came in an envoy `Resource`.
    let decode: @Sendable (_ any: SwiftProtobufAny, _ name: String?) throws(XDSClientError) -> (name: String, value: any Sendable)
    let equal: @Sendable (any Sendable, any Sendable) -> Bool

    init<Value>(_ type: XDSResourceType<Value>) {
        typeURL = type.typeURL
        stateOfTheWorldIsComplete = type.stateOfTheWorldIsComplete
        retainsValues = type.retainsValues
        decode = { (any: SwiftProtobufAny, wrapperName: String?) throws(XDSClientError) -> (name: String, value: any Sendable) in
            guard any.typeURL == type.typeURL else {
                throw .typeMismatch(expected: type.typeURL, actual: any.typeURL, name: wrapperName)
            }
            let value: Value
            do { value = try type.decode(any) } catch {
                throw .undecodable(typeURL: type.typeURL, name: wrapperName, reason: "\(error)")
            }
            let name = wrapperName ?? type.name(value)
            // Consumers key what they apply by the value's own name and remove by the resource's:
            // a resource named other than its value would be added under one name and never removed.
            if let wrapperName, wrapperName != type.name(value) {
                throw .invalid(typeURL: type.typeURL, name: wrapperName, reason: "the resource is named \(wrapperName) but its value is \(type.name(value))")
            }
            do { try type.validate(value) } catch {
                throw .invalid(typeURL: type.typeURL, name: name, reason: "\(error)")
            }
            return (name, value)
        }
        equal = { lhs, rhs in (lhs as? Value) == (rhs as? Value) }
    }

    /// The cache entry for a decoded resource: its version, and its value when the type retains values.
    func cache(version: String, _ value: any Sendable) -> CachedResource {
        CachedResource(version: version, value: retainsValues ? value : nil)
    }
}
