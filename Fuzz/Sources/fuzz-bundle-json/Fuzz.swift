import Foundation
import FuzzSupport
import MeshIdentity
import X509

// SPIFFE bundle documents (JWK sets with x509-svid keys, spiffe_sequence,
// spiffe_refresh_hint) as a bundle endpoint or a file delivers them, through
// TrustBundleCoding.decode for trust domain example.org.
//
// Invariants: a decoded bundle's authorities are certificates; a bundle that
// encodes (P-256 authorities) decodes back to the same bundle.

private let domain: TrustDomain = {
    guard let domain = try? TrustDomain("example.org") else { fatalError("trust domain") }
    return domain
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    let bundle: TrustBundle
    do {
        bundle = try TrustBundleCoding.decode(bytes, trustDomain: domain)
    } catch {
        _ = "\(error)"
        return 0
    }
    Fuzz.check(bundle.trustDomain == domain, "decoded for \(bundle.trustDomain)")
    guard let encoded = try? TrustBundleCoding.encode(bundle) else { return 0 }
    guard let again = try? TrustBundleCoding.decode(encoded, trustDomain: domain) else {
        fatalError("an encoded bundle does not decode: \(String(decoding: encoded, as: UTF8.self))")
    }
    Fuzz.check(again == bundle, "a bundle does not survive encode and decode")
    if let pem = try? bundle.authoritiesPEM(), !bundle.authorities.isEmpty {
        Fuzz.check((try? TrustBundle(trustDomain: domain, pem: pem))?.authorities == bundle.authorities, "authorities PEM does not round-trip")
    }
    return 0
}
