import Foundation
import MeshIdentity
import MeshProto

/// Encodes SVIDs and bundles in the Workload API's wire form: concatenated
/// DER certificates, a PKCS#8 DER key, bundles keyed by trust domain ID.
enum X509SVIDResponseBuilder {
    static func response(for svid: X509SVID, bundles: TrustBundleSet) throws -> SPIFFE_X509SVIDResponse {
        var entry = SPIFFE_X509SVID()
        entry.spiffeID = svid.id.description
        entry.x509Svid = Data(try svid.chainDER())
        entry.x509SvidKey = svid.privateKey.derRepresentation
        if let own = bundles[svid.id.trustDomain] {
            entry.bundle = try wireForm(own)
        }
        var response = SPIFFE_X509SVIDResponse()
        response.svids = [entry]
        for bundle in bundles.all where bundle.trustDomain != svid.id.trustDomain {
            response.federatedBundles[bundle.trustDomain.id.description] = try wireForm(bundle)
        }
        return response
    }

    static func bundles(_ bundles: TrustBundleSet) throws -> SPIFFE_X509BundlesResponse {
        var response = SPIFFE_X509BundlesResponse()
        for bundle in bundles.all {
            response.bundles[bundle.trustDomain.id.description] = try wireForm(bundle)
        }
        return response
    }

    /// A bundle's authorities as concatenated DER.
    private static func wireForm(_ bundle: TrustBundle) throws -> Data {
        Data(try CertificateCoding.concatenatedDER(bundle.authorities))
    }
}
