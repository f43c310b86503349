import Crypto
import Foundation
import MeshProto
import SwiftProtobuf

/// One named xDS resource with a version derived from its content.
///
/// The version is a SHA-256 digest of the type URL and the deterministic
/// protobuf encoding, so the same content always has the same version and a
/// changed resource always has a new one.
public struct XDSResource: Sendable, Hashable {
    /// The resource name (the key subscriptions refer to).
    public let name: String
    /// The packed resource as sent on the wire.
    public let any: Google_Protobuf_Any
    /// The content version (hex digest).
    public let version: String

    /// The resource's type URL.
    public var typeURL: String { any.typeURL }

    /// The resource as a delta response carries it: name, version and the packed message.
    public var deltaResource: Envoy_Service_Discovery_V3_Resource {
        var wire = Envoy_Service_Discovery_V3_Resource()
        wire.name = name
        wire.version = version
        wire.resource = any
        return wire
    }

    /// Packs `message` deterministically and names it `name`.
    public init(name: String, message: some SwiftProtobuf.Message) throws(XDSServerError) {
        let bytes: Data
        do {
            var options = BinaryEncodingOptions()
            options.useDeterministicOrdering = true
            bytes = try message.serializedBytes(options: options)
        } catch {
            throw .encodingFailed(name: name, reason: "\(error)")
        }
        var any = Google_Protobuf_Any()
        any.typeURL = "type.googleapis.com/" + type(of: message).protoMessageName
        any.value = bytes
        self.init(name: name, any: any)
    }

    /// Wraps an already packed resource.
    public init(name: String, any: Google_Protobuf_Any) {
        self.name = name
        self.any = any
        var hasher = SHA256()
        hasher.update(data: Data(any.typeURL.utf8))
        hasher.update(data: Data([0]))
        hasher.update(data: any.value)
        self.version = hasher.finalize().prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}
