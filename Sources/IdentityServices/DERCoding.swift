import SwiftASN1
import X509

/// DER helpers for the Workload API's concatenated-DER fields.
enum DERCoding {
    static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    static func concatenated(_ certificates: [Certificate]) throws -> [UInt8] {
        try certificates.flatMap { try der($0) }
    }
}
