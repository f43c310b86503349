import MeshProto
import SwiftProtobuf

/// Decodes and validates every resource of a response before anything of it
/// is applied, so that one bad resource rejects the whole response.
enum ResponseDecoder {
    static let resourceWrapperTypeURL = "type.googleapis.com/" + Envoy_Service_Discovery_V3_Resource.protoMessageName

    /// A state-of-the-world response: bare resources, or resources wrapped in envoy `Resource`.
    static func decode(
        _ response: Envoy_Service_Discovery_V3_DiscoveryResponse,
        as type: ErasedResourceType?
    ) -> Result<ADSProtocolState.Decoded, XDSClientError> {
        guard let type else { return .failure(.unexpectedType(typeURL: response.typeURL)) }
        var decoded = ADSProtocolState.Decoded(resources: [])
        decoded.resources.reserveCapacity(response.resources.count)
        var seen = Set<String>()
        for (index, any) in response.resources.enumerated() {
            do throws(XDSClientError) {
                let (body, wrapperName) = try unwrap(any, typeURL: type.typeURL)
                let (name, value) = try type.decode(body, wrapperName)
                guard !name.isEmpty else { throw .missingName(typeURL: type.typeURL, index: index) }
                guard seen.insert(name).inserted else { throw .duplicateName(typeURL: type.typeURL, name: name) }
                decoded.resources.append((name, nil, value))
            } catch {
                return .failure(error)
            }
        }
        return .success(decoded)
    }

    /// A delta response: named, versioned `Resource`s and removed names.
    static func decode(
        _ response: Envoy_Service_Discovery_V3_DeltaDiscoveryResponse,
        as type: ErasedResourceType?
    ) -> Result<ADSProtocolState.Decoded, XDSClientError> {
        guard let type else { return .failure(.unexpectedType(typeURL: response.typeURL)) }
        var decoded = ADSProtocolState.Decoded(resources: [], removed: response.removedResources)
        decoded.resources.reserveCapacity(response.resources.count)
        var seen = Set<String>()
        for (index, resource) in response.resources.enumerated() {
            do throws(XDSClientError) {
                guard !resource.name.isEmpty else { throw .missingName(typeURL: type.typeURL, index: index) }
                guard resource.hasResource else {
                    throw .undecodable(typeURL: type.typeURL, name: resource.name, reason: "the Resource carries no body")
                }
                let (name, value) = try type.decode(resource.resource, resource.name)
                guard seen.insert(name).inserted else { throw .duplicateName(typeURL: type.typeURL, name: name) }
                decoded.resources.append((name, resource.version, value))
            } catch {
                return .failure(error)
            }
        }
        for name in response.removedResources where seen.contains(name) {
            return .failure(.duplicateName(typeURL: type.typeURL, name: name))
        }
        return .success(decoded)
    }

    private static func unwrap(_ any: Google_Protobuf_Any, typeURL: String) throws(XDSClientError) -> (Google_Protobuf_Any, String?) {
        guard any.typeURL == resourceWrapperTypeURL else { return (any, nil) }
        let wrapper: Envoy_Service_Discovery_V3_Resource
        do { wrapper = try Envoy_Service_Discovery_V3_Resource(serializedBytes: any.value) } catch {
            throw .undecodable(typeURL: typeURL, name: nil, reason: "envoy Resource wrapper: \(error)")
        }
        return (wrapper.resource, wrapper.name.isEmpty ? nil : wrapper.name)
    }
}
