import NodeProxy
import Testing

@Suite("In-pod capture rules")
struct InPodRulesTests {
    @Test("the rules redirect as istio-cni does: inbound to 15006 except 15008, outbound to 15001, DNS to 15053, ztunnel's mark passes")
    func rulesText() {
        let text = InPodRules().iptablesRestoreInput
        #expect(text.contains("-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006"))
        #expect(text.contains("-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001"))
        #expect(text.contains("--dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053"))
        #expect(text.contains("-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff"))
        var noDNS = InPodRules()
        noDNS.capturesDNS = false
        #expect(!noDNS.iptablesRestoreInput.contains("15053"))
    }
}

@Suite("DNS proxy upstreams from resolv.conf")
struct ResolvConfTests {
    @Test("resolv.conf nameservers become upstreams on port 53; comments and other lines are not")
    func resolvConfNameservers() {
        let upstreams = DNSProxy.nameservers(resolvConf: "# comment\nsearch example.org\nnameserver 10.0.0.2\nnameserver\t::1\nnameserver bogus\noptions ndots:5\n")
        #expect(upstreams.map { "\($0.ipAddress ?? "-"):\($0.port ?? 0)" } == ["10.0.0.2:53", "::1:53"])
    }
}
