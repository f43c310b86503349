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
