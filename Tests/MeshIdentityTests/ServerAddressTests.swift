import MeshIdentity
import Testing

@Suite("ServerAddress: how a control-plane address is resolved and printed")
struct ServerAddressTests {
    @Test("IPv4 and IPv6 literals are told from DNS names; IPv6 prints in brackets")
    func kinds() {
        #expect(ServerAddress(host: "172.18.0.1", port: 15012).kind == .ipv4)
        #expect(ServerAddress(host: "::1", port: 15012).kind == .ipv6)
        #expect(ServerAddress(host: "istiod.istio-system.svc", port: 15012).kind == .dns)
        #expect(ServerAddress(host: "1.2.3", port: 1).kind == .dns, "three numbers are a name, not an address")
        #expect(ServerAddress(host: "1.2.3.999", port: 1).kind == .dns, "a number past 255 is no IPv4 address")
        #expect(ServerAddress(host: "fd00:1::7", port: 15012).kind == .ipv6)
        #expect(ServerAddress(host: "::1", port: 15012).description == "[::1]:15012")
        #expect(ServerAddress(host: "172.18.0.1", port: 15112).description == "172.18.0.1:15112")
    }
}
