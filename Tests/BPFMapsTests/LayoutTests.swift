import BPFMaps
import Testing

/// Pure (unprivileged) checks of the Swift view of the shared C layouts,
/// specs and error messages.
@Suite struct LayoutTests {
    @Test("the imported structs have the sizes the eBPF programs use")
    func sizes() {
        #expect(mesh_ipcache_key.bpfSize == 24)
        #expect(mesh_ipcache_value.bpfSize == 16)
        #expect(mesh_policy_key.bpfSize == 16)
        #expect(mesh_policy_value.bpfSize == 8)
        #expect(mesh_auth_key.bpfSize == 24)
        #expect(mesh_auth_value.bpfSize == 8)
        #expect(mesh_auth_event.bpfSize == 72)
        #expect(mesh_service_key.bpfSize == 20)
        #expect(IPv4PrefixKey.bpfSize == 8)
        #expect(IPv6PrefixKey.bpfSize == 20)
    }

    @Test("policy keys encode the LPM prefix of protocol and port")
    func policyKeyPrefix() throws {
        let exact = mesh_policy_key(identity: 300, direction: .ingress, protocol: 6, port: 8080)
        #expect(exact.prefixlen == UInt32(MESH_POLICY_FULL_PREFIX))
        #expect(exact.port == 8080)
        #expect(exact.portPrefixLength == 16)
        // bytes after prefixlen: identity, direction, pad, pad, protocol, port (big endian), pad
        let raw = exact.withBPFBytes { Array($0) }
        #expect(Array(raw[4..<8]) == [0x2c, 0x01, 0, 0]) // 300 little endian
        #expect(Array(raw[8..<16]) == [0, 0, 0, 6, 0x1f, 0x90, 0, 0])
        let range = mesh_policy_key(identity: 0, direction: .egress, protocol: 17, port: 8085, portPrefixLength: 13)
        #expect(range.prefixlen == UInt32(MESH_POLICY_STATIC_PREFIX) + 8 + 13)
        #expect(range.portPrefixLength == 13)
        #expect(range.port == 8080, "bits beyond the prefix are cleared")
        #expect(range.direction == 1)
        let deny = mesh_policy_value(deny: true, proxyPort: 15001, authType: .spire)
        #expect(deny.isDeny && deny.proxyPort == 0 && deny.auth_type == 0, "deny entries carry no redirect or auth")
        let allow = mesh_policy_value(proxyPort: 15001, authType: .spire, ruleID: 9)
        #expect(!allow.isDeny && allow.proxyPort == 15001 && allow.auth_type == 1 && allow.rule_id == 9)
        let any = mesh_policy_key(identity: 0, direction: .ingress, protocol: 0, port: 443)
        #expect(any.prefixlen == UInt32(MESH_POLICY_STATIC_PREFIX))
        #expect(any.port == 0)
    }

    @Test("ipcache keys carry the family in the prefix")
    func ipcacheKey() throws {
        let v4 = try #require(mesh_ipcache_key(try addr("10.1.0.0"), prefixLength: 16))
        #expect(v4.prefixlen == 48)
        #expect(v4.family == 4)
        #expect(v4.address == (try addr("10.1.0.0")))
        let v6 = mesh_ipcache_key(host: try addr("fd00::7"))
        #expect(v6.prefixlen == 160)
        #expect(v6.address?.description == "fd00::7")
        #expect(mesh_ipcache_key(try addr("10.0.0.0"), prefixLength: 33) == nil)
    }

    @Test("addresses parse and print; garbage is rejected")
    func addresses() throws {
        #expect(IPAddressBytes("10.199.1.2")?.bytes == [10, 199, 1, 2])
        #expect(IPAddressBytes("fd99::1")?.family == .ipv6)
        #expect(IPAddressBytes("fd99::1")?.description == "fd99::1")
        #expect(IPAddressBytes("10.0.0.256") == nil)
        #expect(IPAddressBytes("") == nil)
        #expect(IPAddressBytes(bytes: [1, 2, 3]) == nil)
    }

    @Test("specs default LPM tries to no-prealloc and describe pin paths")
    func specs() {
        let lpm = MapSpec(name: "x", type: .lpmTrie, key: IPv4PrefixKey.self, value: UInt32.self, maxEntries: 4)
        #expect(lpm.flags == .noPrealloc)
        #expect(lpm.keySize == 8 && lpm.valueSize == 4)
        let pinned = MapSpec(name: "m", type: .hash, keySize: 4, valueSize: 4, maxEntries: 1, pinning: .byName(directory: "/sys/fs/bpf/d/"))
        #expect(pinned.pinPath == "/sys/fs/bpf/d/m")
        #expect(MapSpec.ringBuffer(name: "r", size: 4096).type == .ringBuffer)
        #expect(MapType.perCPUHash.isPerCPU && !MapType.hash.isPerCPU)
        #expect(MapType(rawValue: 99).description == "type 99")
    }

    @Test("error messages say what to do")
    func messages() {
        #expect(BPFError.permissionDenied(operation: "create map x").description.contains("CAP_BPF"))
        #expect(BPFError.pinNotFound(path: "/sys/fs/bpf/x").description.contains("mount -t bpf"))
        #expect(BPFError.mapFull(operation: "update x").description.contains("maxEntries"))
        #expect(BPFError.incompatible(path: "/p", reason: "r").description.contains("rm /p"))
        #expect(BPFError.keySizeMismatch(expected: 4, actual: 8).description.contains("4 bytes"))
        #expect(BPFError.invalidArgument(operation: "update x", argument: "key").description.hasSuffix("invalid argument: key"))
    }
}
