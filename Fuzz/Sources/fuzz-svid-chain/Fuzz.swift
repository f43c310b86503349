import Foundation
import FuzzSupport
import MeshIdentity
import X509

// X.509-SVID chains as a peer presents them: PEM text (files, the CLI) or
// concatenated DER (the Workload API's X509SVID.x509_svid), decoded with
// CertificateCoding and verified by X509SVIDVerifier against fixed bundles:
// example.org trusts the fuzz PKI's root (FuzzPKI, generated with the seeds),
// other.org trusts its intermediate. Verification time is fixed (2030-01-01),
// inside every seed certificate's validity.
//
// Input: byte 0 bit 0 picks PEM (0) or DER (1); the rest is the chain.
//
// Invariants: the chain given as per-certificate DER verifies exactly as the
// decoded chain does; an accepted chain's ID is its leaf's single URI SAN,
// its path starts at the leaf, ends at a trusted root of the ID's trust
// domain and is no longer than the limit; PEM coding round-trips.

private let now = Date(timeIntervalSince1970: 1_893_456_000)  // 2030-01-01T00:00:00Z
private let verifier = X509SVIDVerifier()
private let bundles: TrustBundleSet = {
    do {
        let root = try TrustBundle(trustDomain: TrustDomain("example.org"), pem: FuzzPKI.rootPEM)
        let intermediate = try TrustBundle(trustDomain: TrustDomain("other.org"), pem: FuzzPKI.intermediatePEM)
        return TrustBundleSet([root, intermediate])
    } catch {
        fatalError("fuzz PKI: \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var reader = FuzzReader(Fuzz.bytes(data, size))
    let der = reader.byte() & 1 == 1
    let body = reader.rest()
    let chain: [Certificate]
    do {
        chain = der ? try CertificateCoding.certificates(concatenatedDER: Array(body)) : try CertificateCoding.certificates(pem: Fuzz.text(body))
    } catch {
        _ = "\(error)"
        return 0
    }
    Fuzz.check(!chain.isEmpty, "decoding returned no certificate without an error")
    if let text = try? CertificateCoding.pem(chain) {
        Fuzz.check((try? CertificateCoding.certificates(pem: text)) == chain, "PEM coding does not round-trip")
    }
    let result: Result<X509SVIDVerifier.Verified, X509SVIDValidationError>
    do { result = .success(try verifier.verify(chain: chain, bundles: bundles, now: now)) } catch { result = .failure(error) }

    // The same chain as a TLS stack hands it over: one DER blob per certificate.
    if let blobs = try? chain.map({ try CertificateCoding.der($0) }) {
        let again: Result<X509SVIDVerifier.Verified, X509SVIDValidationError>
        do { again = .success(try verifier.verify(derChain: blobs, bundles: bundles, now: now)) } catch { again = .failure(error) }
        Fuzz.check(again == result, "verify(derChain:) says \(again), verify(chain:) says \(result)")
    }
    guard case .success(let verified) = result else { return 0 }
    Fuzz.check((try? X509SVIDVerifier.spiffeID(ofLeaf: chain[0])) == verified.id, "verified ID is not the leaf's URI SAN")
    Fuzz.check(!verified.id.isTrustDomainID, "a leaf ID without a path was accepted")
    Fuzz.check(verified.path.first == chain[0], "the path does not start at the leaf")
    Fuzz.check(verified.path.count <= verifier.maximumChainLength, "a path of \(verified.path.count) certificates")
    guard let last = verified.path.last, let bundle = bundles[verified.id.trustDomain] else {
        fatalError("accepted \(verified.id) without a bundle for its trust domain")
    }
    Fuzz.check(bundle.authorities.contains(last), "the path of \(verified.id) does not end at a root of \(verified.id.trustDomain)")
    return 0
}
