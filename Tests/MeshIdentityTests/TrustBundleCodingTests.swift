import Foundation
import Testing
@testable import MeshIdentity

@Suite("SPIFFE bundle format")
struct TrustBundleCodingTests {
    @Test("round trip keeps authorities, sequence and refresh hint")
    func roundTrip() throws {
        let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        var bundle = ca.trustBundle
        bundle.sequenceNumber = 42
        bundle.refreshHint = 300
        let data = try TrustBundleCoding.encode(bundle)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["spiffe_sequence"] as? Int == 42)
        #expect(json["spiffe_refresh_hint"] as? Int == 300)
        let keys = try #require(json["keys"] as? [[String: Any]])
        #expect(keys.count == 1)
        #expect(keys[0]["use"] as? String == "x509-svid")
        #expect(keys[0]["kty"] as? String == "EC")
        #expect(keys[0]["crv"] as? String == "P-256")
        #expect((keys[0]["x5c"] as? [String])?.count == 1)
        let decoded = try TrustBundleCoding.decode(data, trustDomain: bundle.trustDomain)
        #expect(decoded == bundle)
    }

    @Test("keys with unknown use or kty are ignored")
    func ignoresUnknown() throws {
        let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        let data = try TrustBundleCoding.encode(ca.trustBundle)
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var keys = try #require(json["keys"] as? [[String: Any]])
        keys.append(["use": "jwt-svid", "kty": "EC", "kid": "abc", "crv": "P-256", "x": "AA", "y": "AA"])
        keys.append(["use": "something-new", "kty": "EC"])
        keys.append(["use": "x509-svid", "kty": "OKP", "x5c": ["not even base64"]])
        json["keys"] = keys
        let decoded = try TrustBundleCoding.decode(JSONSerialization.data(withJSONObject: json), trustDomain: ca.trustDomain)
        #expect(decoded.authorities == ca.trustBundle.authorities)
    }

    @Test("malformed documents give located errors", arguments: [
        (#"not json"#, "document"),
        (#"{"spiffe_sequence": 1}"#, "document"),
        (#"{"keys": [{"use": "x509-svid", "kty": "EC"}]}"#, "keys[0].x5c"),
        (#"{"keys": [{"use": "x509-svid", "kty": "EC", "x5c": ["AA==", "AA=="]}]}"#, "keys[0].x5c"),
        (#"{"keys": [{"use": "x509-svid", "kty": "EC", "x5c": ["%%%"]}]}"#, "keys[0].x5c[0]"),
        (#"{"keys": [{"use": "x509-svid", "kty": "EC", "x5c": ["MAMCAQE="]}]}"#, "keys[0].x5c[0]"),
        (#"{"keys": "nope"}"#, "document"),
    ])
    func malformed(json: String, location: String) throws {
        #expect {
            try TrustBundleCoding.decode(Data(json.utf8), trustDomain: .clusterLocal)
        } throws: { error in
            (error as? TrustBundleCodingError)?.location == location
        }
    }

    @Test("coordinates that disagree with the certificate are refused")
    func mismatchedCoordinates() throws {
        let ca = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        let other = try CertificateAuthority.selfSigned(trustDomain: TrustDomain("example.org"))
        var json = try #require(try JSONSerialization.jsonObject(with: TrustBundleCoding.encode(ca.trustBundle)) as? [String: Any])
        let otherJSON = try #require(try JSONSerialization.jsonObject(with: TrustBundleCoding.encode(other.trustBundle)) as? [String: Any])
        var keys = try #require(json["keys"] as? [[String: Any]])
        let otherKeys = try #require(otherJSON["keys"] as? [[String: Any]])
        keys[0]["x"] = otherKeys[0]["x"]
        json["keys"] = keys
        #expect {
            try TrustBundleCoding.decode(JSONSerialization.data(withJSONObject: json), trustDomain: ca.trustDomain)
        } throws: { error in
            (error as? TrustBundleCodingError)?.location == "keys[0]"
        }
    }

    @Test("a missing file is a clear error")
    func missingFile() {
        #expect(throws: TrustBundleCodingError(location: "/nonexistent/bundle.json", reason: "file not found or not readable")) {
            try TrustBundleCoding.read(file: "/nonexistent/bundle.json", trustDomain: .clusterLocal)
        }
    }
}
