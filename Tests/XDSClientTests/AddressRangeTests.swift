import Foundation
import MeshIdentity
import Testing
import XDSClient

@Suite("L4 authorization with IP ranges (source_ips, destination_ips and their negations)")
struct AddressRangeTests {
    let echo = Workload(uid: "u", name: "echo", namespace: "default", workloadIPs: ["10.244.1.5"])

    @Test("ranges contain what their prefix covers, IPv4 and IPv6; other families and bad text never match")
    func contains() throws {
        let v4 = try AddressRange(parsing: "10.244.0.0/16")
        #expect(v4.contains("10.244.255.1") && !v4.contains("10.245.0.1") && !v4.contains("2001:db8::1") && !v4.contains("nonsense"))
        #expect(try AddressRange(parsing: "0.0.0.0/0").contains("192.0.2.1"))
        let v6 = try AddressRange(parsing: "2001:db8::/33")
        #expect(v6.contains("2001:db8:7fff::1") && !v6.contains("2001:db8:8000::1"))
        #expect(try AddressRange(parsing: "10.0.0.1").description == "10.0.0.1/32")
        for bad in ["10.0.0.0/40", "", "/8", "10.0.0.0/", "10.0.0.0/x"] {
            #expect(throws: WorkloadStoreError.self, "\(bad)") { try AddressRange(parsing: bad) }
        }
    }

    @Test("an ALLOW on source_ips admits only sources inside; not_source_ips in a DENY refuses those outside; an unknown source fails the positive list")
    func evaluation() throws {
        let allowPods = Authorization(name: "pods-only", namespace: "default", scope: .namespace, action: .allow,
                                      rules: [[[AuthorizationMatch(sourceIPs: [try AddressRange(parsing: "10.244.0.0/16")])]]])
        let denyOutside = Authorization(name: "deny-outside", namespace: "default", scope: .namespace, action: .deny,
                                        rules: [[[AuthorizationMatch(notSourceIPs: [try AddressRange(parsing: "10.0.0.0/8")])]]])
        let policies = [allowPods, denyOutside]
        func decide(_ source: String?) -> L4Decision {
            policies.evaluate(L4Connection(source: nil, destination: echo, destinationPort: 80, sourceAddress: source))
        }
        #expect(decide("10.244.3.4") == .allow(policy: "default/pods-only"))
        #expect(decide("10.9.0.1") == .deny(reason: "no ALLOW policy matches (default/pods-only)"))
        #expect(decide("192.168.1.1") == .deny(reason: "denied by policy default/deny-outside"))
        #expect(!decide(nil).isAllowed)
        let toEcho = Authorization(name: "to-echo", namespace: "default", scope: .namespace, action: .allow,
                                   rules: [[[AuthorizationMatch(destinationIPs: [try AddressRange(parsing: "10.244.1.5/32")])]]])
        #expect([toEcho].evaluate(L4Connection(source: nil, destination: echo, destinationPort: 80)).isAllowed)
    }
}
