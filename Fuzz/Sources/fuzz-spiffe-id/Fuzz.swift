import FuzzSupport
import MeshIdentity

// SPIFFE ID and trust-domain parsing (the text of a URI SAN, a policy
// principal, a flag). Invariants: an accepted ID prints back to the same text,
// reparses to itself, and its parts obey the rules the parser enforces.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = Fuzz.text(Fuzz.bytes(data, size))
    if let id = try? SPIFFEID(text) {
        Fuzz.check(id.description == text, "\(text) parsed and printed as \(id.description)")
        Fuzz.check((try? SPIFFEID(id.description)) == id, "\(text) does not reparse to itself")
        Fuzz.check(id.description.utf8.count <= SPIFFEID.maximumLength, "accepted \(id.description.utf8.count) bytes")
        Fuzz.check(!id.trustDomain.name.isEmpty && id.trustDomain.name.utf8.count <= 255, "trust domain \(id.trustDomain.name)")
        Fuzz.check(id.path.isEmpty || (id.path.hasPrefix("/") && !id.path.hasSuffix("/")), "path \(id.path)")
        Fuzz.check(id.isTrustDomainID == id.path.isEmpty, "isTrustDomainID")
        Fuzz.check((try? TrustDomain(id.trustDomain.name)) == id.trustDomain, "trust domain \(id.trustDomain.name) does not reparse")
        Fuzz.check(id.trustDomain.id.isTrustDomainID, "trust domain ID has a path")
        if let (namespace, account) = id.istioIdentity {
            Fuzz.check(
                (try? SPIFFEID.istio(trustDomain: id.trustDomain, namespace: namespace, serviceAccount: account)) == id,
                "Istio identity \(namespace)/\(account) does not rebuild \(id)"
            )
            Fuzz.check(id.istioNamespace == namespace && id.istioServiceAccount == account, "Istio accessors")
        } else {
            Fuzz.check((try? id.requireIstioIdentity()) == nil, "requireIstioIdentity accepted \(id)")
        }
        _ = id.segments
    }
    if let domain = try? TrustDomain(text) {
        Fuzz.check((try? TrustDomain(domain.name)) == domain, "trust domain \(domain.name) does not reparse")
        Fuzz.check((try? SPIFFEID(domain.id.description)) == domain.id, "trust domain ID \(domain.id) does not reparse")
    }
    // The text as the parts of an ID built from a trust domain and a path, as callers do.
    if let slash = text.firstIndex(of: "/"), let domain = try? TrustDomain(String(text[..<slash])),
       let id = try? SPIFFEID(trustDomain: domain, path: String(text[slash...])) {
        Fuzz.check(id.trustDomain == domain, "SPIFFEID(trustDomain:path:) changed the trust domain")
    }
    return 0
}
