import Foundation
import MeshProto
import SwiftProtobuf
import Testing
@testable import XDSClient

@Suite("ADS client protocol state (no I/O)")
struct ADSProtocolStateTests {
    static let clusterURL = XDSResourceType.cluster.typeURL

    func state(_ variant: ADSClient.Variant, legacy: Bool = false) -> ADSProtocolState {
        var state = ADSProtocolState(variant: variant, node: XDSNode.named("n1"), legacyWildcard: legacy, doesNotExistTimeout: .seconds(15))
        state.register(ErasedResourceType(XDSResourceType.cluster), replace: true)
        state.register(ErasedResourceType(XDSResourceType.listener), replace: true)
        return state
    }

    func cluster(_ name: String) throws -> Google_Protobuf_Any {
        var cluster = Envoy_Config_Cluster_V3_Cluster()
        cluster.name = name
        return try Google_Protobuf_Any(message: cluster)
    }

    @Test("SotW: node only on a stream's first request; ACK echoes version and nonce; NACK keeps the last good version")
    func sotwAckNack() throws {
        var state = state(.stateOfTheWorld)
        _ = state.subscribe(Self.clusterURL, wildcard: true, names: [], now: .now)
        _ = state.subscribe(XDSResourceType.listener.typeURL, wildcard: true, names: [], now: .now)
        let opening = state.streamStarted(now: .now)
        guard case .sotw(let cds) = opening[0], case .sotw(let lds) = opening[1] else { Issue.record("wrong variant"); return }
        #expect(cds.typeURL == Self.clusterURL, "CDS before LDS")
        #expect(cds.node.id == "n1")
        #expect(!lds.hasNode)
        #expect(cds.resourceNames == ["*"])

        var response = Envoy_Service_Discovery_V3_DiscoveryResponse()
        response.typeURL = Self.clusterURL
        response.versionInfo = "v1"
        response.nonce = "n-1"
        response.resources = [try cluster("a")]
        let decoded = ResponseDecoder.decode(response, as: state.registeredType(Self.clusterURL))
        guard case (.sotw(let ack), let change?) = state.handle(response, decoded: decoded, now: .now) else { Issue.record("no ACK"); return }
        #expect(ack.versionInfo == "v1")
        #expect(ack.responseNonce == "n-1")
        #expect(!ack.hasErrorDetail)
        #expect(change.updated == ["a"])

        response.versionInfo = "v2"
        response.nonce = "n-2"
        response.resources = [try cluster("a"), try cluster("a")]
        let bad = ResponseDecoder.decode(response, as: state.registeredType(Self.clusterURL))
        guard case (.sotw(let nack), nil) = state.handle(response, decoded: bad, now: .now) else { Issue.record("no NACK"); return }
        #expect(nack.versionInfo == "v1")
        #expect(nack.responseNonce == "n-2")
        #expect(nack.errorDetail.code == 3)
        #expect(nack.errorDetail.message.contains("\"a\" twice"))

        // A new stream re-sends the last accepted version, without a nonce, with the node again.
        state.streamEnded()
        guard case .sotw(let again) = state.streamStarted(now: .now)[0] else { Issue.record("wrong variant"); return }
        #expect(again.versionInfo == "v1")
        #expect(again.responseNonce.isEmpty)
        #expect(again.node.id == "n1")
    }

    @Test("legacy wildcard: an empty name list instead of *")
    func legacyWildcard() {
        var state = state(.stateOfTheWorld, legacy: true)
        _ = state.subscribe(Self.clusterURL, wildcard: true, names: [], now: .now)
        guard case .sotw(let request) = state.streamStarted(now: .now)[0] else { Issue.record("wrong variant"); return }
        #expect(request.resourceNames.isEmpty)
        var delta = self.state(.delta, legacy: true)
        _ = delta.subscribe(Self.clusterURL, wildcard: true, names: [], now: .now)
        guard case .delta(let first) = delta.streamStarted(now: .now)[0] else { Issue.record("wrong variant"); return }
        #expect(first.resourceNamesSubscribe.isEmpty)
    }

    @Test("delta: subscribe/unsubscribe lists while connected; initial_resource_versions after a reconnect")
    func deltaLifecycle() throws {
        var state = state(.delta)
        _ = state.subscribe(Self.clusterURL, wildcard: false, names: ["a", "b"], now: .now)
        guard case .delta(let first) = state.streamStarted(now: .now)[0] else { Issue.record("wrong variant"); return }
        #expect(first.resourceNamesSubscribe == ["a", "b"])
        #expect(first.initialResourceVersions.isEmpty)

        var response = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse()
        response.typeURL = Self.clusterURL
        response.nonce = "n-1"
        var resource = Envoy_Service_Discovery_V3_Resource()
        resource.name = "a"
        resource.version = "va"
        resource.resource = try cluster("a")
        response.resources = [resource]
        let decoded = ResponseDecoder.decode(response, as: state.registeredType(Self.clusterURL))
        guard case (.delta(let ack), _) = state.handle(response, decoded: decoded, now: .now) else { Issue.record("no ACK"); return }
        #expect(ack.responseNonce == "n-1")
        #expect(!ack.hasNode)

        guard case .delta(let more)? = state.subscribe(Self.clusterURL, wildcard: false, names: ["c"], now: .now) else { Issue.record("no request"); return }
        #expect(more.resourceNamesSubscribe == ["c"])
        #expect(more.responseNonce.isEmpty)
        guard case (.delta(let less)?, _) = state.unsubscribe(Self.clusterURL, wildcard: false, names: ["b"]) else { Issue.record("no request"); return }
        #expect(less.resourceNamesUnsubscribe == ["b"])

        state.streamEnded()
        guard case .delta(let resumed) = state.streamStarted(now: .now)[0] else { Issue.record("wrong variant"); return }
        #expect(resumed.resourceNamesSubscribe == ["a", "c"])
        #expect(resumed.initialResourceVersions == ["a": "va"])
    }

    @Test("a response whose resources are packed as another type is NACKed naming both types")
    func typeMismatch() throws {
        var response = Envoy_Service_Discovery_V3_DiscoveryResponse()
        response.typeURL = Self.clusterURL
        response.resources = [try Google_Protobuf_Any(message: Envoy_Config_Listener_V3_Listener())]
        let state = state(.stateOfTheWorld)
        guard case .failure(let error) = ResponseDecoder.decode(response, as: state.registeredType(Self.clusterURL)) else {
            Issue.record("accepted a Listener as a Cluster"); return
        }
        #expect(error.description.contains("envoy.config.listener.v3.Listener"))
        #expect(error.description.contains("envoy.config.cluster.v3.Cluster"))
        guard case .failure(.unexpectedType) = ResponseDecoder.decode(response, as: nil) else { Issue.record("unknown type accepted"); return }
    }

    @Test("backoff grows from 10 ms to at most 15 s with ±20 % jitter and resets")
    func backoff() {
        var attempts = ReconnectBackoff().attempts()
        var delays: [Duration] = []
        for _ in 0..<20 { delays.append(attempts.next()) }
        #expect(delays[0] >= .milliseconds(8) && delays[0] <= .milliseconds(12))
        #expect(delays.allSatisfy { $0 <= .seconds(15) })
        #expect(delays.last! >= .seconds(12))
        attempts.reset()
        #expect(attempts.next() <= .milliseconds(12))
    }

    @Test("ztunnel-shaped node identity")
    func ztunnelNode() {
        let node = XDSNode.ztunnel(podName: "ztunnel-x7k2", namespace: "istio-system", podIP: "10.0.0.7", nodeName: "node-a")
        #expect(node.id == "ztunnel~10.0.0.7~ztunnel-x7k2.istio-system~istio-system.svc.cluster.local")
        #expect(node.metadata.fields["NODE_NAME"]?.stringValue == "node-a")
        #expect(node.metadata.fields["NAMESPACE"]?.stringValue == "istio-system")
    }
}

extension ADSProtocolStateTests {
    /// Found by `scripts/fuzz xds-response` (Fuzz/Regressions/xds-response): a delta resource named other
    /// than its value was added to the store under the value's key and never removed by its name.
    @Test("a delta resource named other than its value is NACKed (it could never be removed)")
    func deltaNameMustMatchValue() throws {
        var state = state(.delta)
        _ = state.subscribe(Self.clusterURL, wildcard: true, names: [], now: .now)
        _ = state.streamStarted(now: .now)
        var response = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse()
        response.typeURL = Self.clusterURL
        response.nonce = "n-1"
        var resource = Envoy_Service_Discovery_V3_Resource()
        resource.name = "alias"
        resource.version = "1"
        resource.resource = try cluster("real")
        response.resources = [resource]
        guard case .failure(let error) = ResponseDecoder.decode(response, as: state.registeredType(Self.clusterURL)) else {
            Issue.record("a resource named alias whose value is real was accepted")
            return
        }
        #expect("\(error)".contains("named alias but its value is real"), "\(error)")
        resource.name = "real"
        response.resources = [resource]
        guard case .success = ResponseDecoder.decode(response, as: state.registeredType(Self.clusterURL)) else {
            Issue.record("a correctly named resource was refused")
            return
        }
    }
}
