import Testing
@testable import MeshIdentity

@Suite("SPIFFE ID parsing")
struct SPIFFEIDTests {
    @Test("valid IDs parse into trust domain and path", arguments: [
        ("spiffe://example.org", "example.org", ""),
        ("spiffe://example.org/workload", "example.org", "/workload"),
        ("spiffe://cluster.local/ns/default/sa/web", "cluster.local", "/ns/default/sa/web"),
        ("spiffe://a-b_c.0.9/A.b-C_d/..x/x..", "a-b_c.0.9", "/A.b-C_d/..x/x.."),
        ("spiffe://td/.../a", "td", "/.../a"),
    ])
    func valid(input: String, trustDomain: String, path: String) throws {
        let id = try SPIFFEID(input)
        #expect(id.trustDomain.name == trustDomain)
        #expect(id.path == path)
        #expect(id.description == input)
    }

    @Test("each broken rule is named with its position", arguments: [
        ("", SPIFFEIDError.Rule.empty, 0),
        ("http://example.org/a", .wrongScheme, 0),
        ("SPIFFE://example.org/a", .wrongScheme, 0),
        ("spiffe:/example.org", .wrongScheme, 0),
        ("spiffe://", .emptyTrustDomain, 9),
        ("spiffe:///path", .emptyTrustDomain, 9),
        ("spiffe://Example.org/a", .trustDomainCharacter, 9),
        ("spiffe://exa mple.org", .trustDomainCharacter, 12),
        ("spiffe://example.org:8080/a", .port, 20),
        ("spiffe://user@example.org/a", .userInfo, 13),
        ("spiffe://user:pw@example.org/a", .port, 13),
        ("spiffe://example.org/a?x=1", .query, 22),
        ("spiffe://example.org/a#frag", .fragment, 22),
        ("spiffe://example.org/a%20b", .percentEncoding, 22),
        ("spiffe://example.org//a", .emptySegment, 20),
        ("spiffe://example.org/a//b", .emptySegment, 22),
        ("spiffe://example.org/./a", .dotSegment, 21),
        ("spiffe://example.org/a/..", .dotSegment, 23),
        ("spiffe://example.org/", .trailingSlash, 20),
        ("spiffe://example.org/a/", .trailingSlash, 22),
        ("spiffe://example.org/a$b", .pathCharacter, 22),
        ("spiffe://example.org/caf\u{e9}", .pathCharacter, 24),
    ])
    func invalid(input: String, rule: SPIFFEIDError.Rule, position: Int) {
        #expect(throws: SPIFFEIDError(rule: rule, position: position, input: input)) {
            try SPIFFEID(input)
        }
    }

    @Test("length limits: 2048-byte ID, 255-byte trust domain")
    func lengthLimits() throws {
        let prefix = "spiffe://example.org/"
        let longest = prefix + String(repeating: "a", count: 2048 - prefix.utf8.count)
        #expect(try SPIFFEID(longest).description.utf8.count == 2048)
        let tooLong = longest + "a"
        #expect(throws: SPIFFEIDError(rule: .tooLong, position: 2048, input: tooLong)) { try SPIFFEID(tooLong) }

        let td255 = String(repeating: "t", count: 255)
        #expect(try TrustDomain(td255).name == td255)
        let td256 = td255 + "t"
        #expect(throws: SPIFFEIDError(rule: .trustDomainTooLong, position: 255, input: td256)) { try TrustDomain(td256) }
    }

    @Test("error messages name the rule and the position")
    func message() {
        do {
            _ = try SPIFFEID("spiffe://example.org/a//b")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("path segment is empty"))
            #expect(error.description.contains("byte 22"))
        }
    }

    @Test("trust domain accepts a bare name or a spiffe URI")
    func trustDomain() throws {
        #expect(try TrustDomain("example.org") == TrustDomain("spiffe://example.org"))
        #expect(throws: SPIFFEIDError.self) { try TrustDomain("") }
        #expect(throws: SPIFFEIDError.self) { try TrustDomain("Upper.org") }
        #expect(TrustDomain.clusterLocal.id.description == "spiffe://cluster.local")
    }

    @Test("Istio identities round-trip")
    func istio() throws {
        let id = try SPIFFEID.istio(namespace: "bookinfo", serviceAccount: "reviews")
        #expect(id.description == "spiffe://cluster.local/ns/bookinfo/sa/reviews")
        #expect(id.istioNamespace == "bookinfo")
        #expect(id.istioServiceAccount == "reviews")
        let other = try SPIFFEID("spiffe://cluster.local/ns/bookinfo/sa/reviews/extra")
        #expect(other.istioIdentity == nil)
        #expect(throws: SPIFFEIDError.self) { try other.requireIstioIdentity() }
        #expect(throws: SPIFFEIDError.self) { try SPIFFEID.istio(namespace: "bad/ns", serviceAccount: "x") }
        #expect(try SPIFFEID("spiffe://td/sa/x/ns/y").istioIdentity == nil)
    }

    @Test("Codable as a plain string")
    func codable() throws {
        let id = try SPIFFEID("spiffe://example.org/a")
        let data = try JSONEncoder().encode([id])
        #expect(String(decoding: data, as: UTF8.self) == #"["spiffe:\/\/example.org\/a"]"#)
        #expect(try JSONDecoder().decode([SPIFFEID].self, from: data) == [id])
        #expect(throws: (any Error).self) { try JSONDecoder().decode([SPIFFEID].self, from: Data(#"["spiffe://x/"]"#.utf8)) }
    }
}

import Foundation
