#if os(Linux)
/// The mutual-auth map (`mesh_auth`) as the node agent uses it: record a
/// successful handshake until an expiry, check, and revoke everything of a
/// remote workload incarnation when its address is released or reused.
///
/// Expirations are `CLOCK_BOOTTIME` nanoseconds (``BootClock``), the clock of
/// the datapath's `bpf_ktime_get_boot_ns`. See docs/bpf.md ("IP reuse").
public struct AuthMap: Sendable {
    /// The underlying map (`mesh_auth_key` → `mesh_auth_value`).
    public let map: BPFMap

    /// Wraps `map`; throws ``BPFError/keySizeMismatch(expected:actual:)`` /
    /// ``BPFError/valueSizeMismatch(expected:actual:)`` when it is not an auth map.
    public init(_ map: BPFMap) throws(BPFError) {
        try map.checkKey(mesh_auth_key.self)
        try map.checkValue(mesh_auth_value.self)
        self.map = map
    }

    /// Records that `key` is authenticated until `expiration` (boot-time ns).
    public func authorize(_ key: mesh_auth_key, until expiration: UInt64) throws(BPFError) {
        try map.update(key, mesh_auth_value(expiration_ns: expiration))
    }

    /// Whether `key` has an entry that has not expired at `now`.
    public func isAuthenticated(_ key: mesh_auth_key, now: UInt64 = BootClock.now()) throws(BPFError) -> Bool {
        guard let value = try map.lookup(key, as: mesh_auth_value.self) else { return false }
        return value.expiration_ns > now
    }

    /// Deletes every entry of the remote workload incarnation `incarnation`;
    /// returns how many were removed.
    @discardableResult
    public func revoke(remoteIncarnation incarnation: UInt64) throws(BPFError) -> Int {
        let keys = try map.allKeys(as: mesh_auth_key.self).filter { $0.remote_incarnation == incarnation }
        try map.deleteBatch(keys)
        return keys.count
    }

    /// Deletes every entry that expired before `now`; returns how many were removed.
    @discardableResult
    public func removeExpired(now: UInt64 = BootClock.now()) throws(BPFError) -> Int {
        let expired = try map.lookupBatch(key: mesh_auth_key.self, value: mesh_auth_value.self).entries
            .filter { $0.value.expiration_ns <= now }.map(\.key)
        try map.deleteBatch(expired)
        return expired.count
    }
}
#endif
