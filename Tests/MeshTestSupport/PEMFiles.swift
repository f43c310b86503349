import Foundation
import MeshIdentity

/// SVID and bundle PEM files for external peers.
public struct PEMFiles: Sendable {
    public let directory: String
    public var ca: String { directory + "/ca.pem" }
    public func cert(_ name: String) -> String { directory + "/\(name).pem" }
    public func key(_ name: String) -> String { directory + "/\(name).key" }

    public init(pki: ServerClientPKI, ids: [String: SPIFFEID]) throws {
        directory = NSTemporaryDirectory() + "hbone-interop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try pki.ca.trustBundle.authoritiesPEM().write(toFile: directory + "/ca.pem", atomically: true, encoding: .utf8)
        for (name, id) in ids {
            let svid = try pki.ca.issueSVID(for: id)
            try svid.chainPEM().write(toFile: cert(name), atomically: true, encoding: .utf8)
            try svid.privateKeyPEM.write(toFile: key(name), atomically: true, encoding: .utf8)
        }
    }

    public func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
