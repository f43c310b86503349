import Foundation
import MeshProto
import PolicyEngine
import SwiftProtobuf
import Testing

/// The `istio.security.Authorization` resource ztunnel receives over xDS,
/// encoded to protobuf wire bytes, decoded, converted and evaluated.
@Suite("Istio Authorization from xDS protobuf")
struct IstioProtoAdapterTests {
    let mesh = IstioMesh()

    func exact(_ value: String) -> Istio_Security_StringMatch {
        var match = Istio_Security_StringMatch()
        match.matchType = .exact(value)
        return match
    }

    /// A policy in namespace `foo` with one group of one rule of one match.
    func authorization(name: String, scope: Istio_Security_Scope, action: Istio_Security_Action,
                       match: Istio_Security_Match) -> Istio_Security_Authorization {
        var rules = Istio_Security_Rules()
        rules.matches = [match]
        var group = Istio_Security_Group()
        group.rules = [rules]
        var proto = Istio_Security_Authorization()
        proto.name = name
        proto.namespace = "foo"
        proto.scope = scope
        proto.action = action
        proto.groups = [group]
        return proto
    }

    func allowFooOnPort80() -> Istio_Security_Authorization {
        var match = Istio_Security_Match()
        match.namespaces = [exact("foo")]
        match.destinationPorts = [80]
        return authorization(name: "allow-foo", scope: .workloadSelector, action: .allow, match: match)
    }

    @Test("an ALLOW bound to a workload decides by namespace and port after a wire round trip")
    func allowByNamespaceAndPort() throws {
        let wire: Data = try allowFooOnPort80().serializedData()
        let decoded = try Istio_Security_Authorization(serializedBytes: wire)
        let policy = try IstioAuthorization(decoded, boundWorkloads: ["foo/httpbin"])
        let set = try PolicySet(inventory: mesh.inventory, istioAuthorizations: [policy])
        #expect(set.decide(mesh.conn(mesh.fooSleep, port: 80)).verdict == .allow)
        #expect(set.decide(mesh.conn(mesh.fooSleep, port: 81)).verdict == .deny)
        #expect(set.decide(mesh.conn(mesh.barSleep, port: 80)).verdict == .deny)
        // Not bound to any workload: the selector scope applies to nobody, so no ALLOW policy → allow.
        let unbound = try PolicySet(inventory: mesh.inventory, istioAuthorizations: [IstioAuthorization(decoded)])
        #expect(unbound.decide(mesh.conn(mesh.barSleep, port: 80)).verdict == .allow)
    }

    @Test("a DENY on a source CIDR")
    func denyBySourceCIDR() throws {
        var address = Istio_Security_Address()
        address.address = Data([10, 1, 0, 0])
        address.length = 16
        var match = Istio_Security_Match()
        match.sourceIps = [address]
        let proto = authorization(name: "deny-bar-net", scope: .namespace, action: .deny, match: match)
        let set = try PolicySet(inventory: mesh.inventory, istioAuthorizations: [IstioAuthorization(proto)])
        #expect(set.decide(mesh.conn(mesh.barSleep)).verdict == .deny)   // 10.1.0.2
        #expect(set.decide(mesh.conn(mesh.fooSleep)).verdict == .allow)  // 10.0.0.2
    }

    @Test("malformed resources are refused with the policy named")
    func malformed() throws {
        var unknownScope = allowFooOnPort80()
        unknownScope.scope = .UNRECOGNIZED(7)
        #expect(throws: PolicyCompileError.self) { try IstioAuthorization(unknownScope) }

        var untyped = allowFooOnPort80()
        untyped.groups[0].rules[0].matches[0].namespaces = [Istio_Security_StringMatch()]
        #expect(throws: PolicyCompileError.self) { try IstioAuthorization(untyped) }

        var badPort = allowFooOnPort80()
        badPort.groups[0].rules[0].matches[0].destinationPorts = [70000]
        do {
            _ = try IstioAuthorization(badPort)
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("allow-foo"))
            #expect(error.description.contains("70000"))
        }

        var badAddress = allowFooOnPort80()
        var address = Istio_Security_Address()
        address.address = Data([1, 2, 3])
        badAddress.groups[0].rules[0].matches[0].sourceIps = [address]
        #expect(throws: PolicyCompileError.self) { try IstioAuthorization(badAddress) }

        #expect(throws: (any Error).self) { try Istio_Security_Authorization(serializedBytes: Data([0xFF, 0xFF, 0xFF])) }
    }
}
