import MeshProto
import SwiftProtobuf

/// Builders for the `Node` an ADS client identifies itself with.
public enum XDSNode {
    /// The user agent every node built here reports.
    public static let userAgentName = "swift-mesh"

    /// A node in the shape Istio ztunnel sends to istiod: the ID
    /// `ztunnel~<podIP>~<pod>.<namespace>~<namespace>.svc.cluster.local`, and
    /// metadata `NAME`, `NAMESPACE`, `NODE_NAME`, `CLUSTER_ID`,
    /// `SERVICE_ACCOUNT`, `INSTANCE_IPS` and `ISTIO_VERSION`, so a control plane
    /// can scope what it pushes to the node the proxy runs on.
    public static func ztunnel(
        podName: String,
        namespace: String,
        podIP: String,
        nodeName: String,
        clusterID: String = "Kubernetes",
        serviceAccount: String = "ztunnel",
        istioVersion: String = "1.24.0"
    ) -> Envoy_Config_Core_V3_Node {
        var node = Envoy_Config_Core_V3_Node()
        node.id = "ztunnel~\(podIP)~\(podName).\(namespace)~\(namespace).svc.cluster.local"
        node.metadata = Google_Protobuf_Struct(fields: [
            "NAME": Google_Protobuf_Value(stringValue: podName),
            "NAMESPACE": Google_Protobuf_Value(stringValue: namespace),
            "NODE_NAME": Google_Protobuf_Value(stringValue: nodeName),
            "CLUSTER_ID": Google_Protobuf_Value(stringValue: clusterID),
            "SERVICE_ACCOUNT": Google_Protobuf_Value(stringValue: serviceAccount),
            "INSTANCE_IPS": Google_Protobuf_Value(stringValue: podIP),
            "ISTIO_VERSION": Google_Protobuf_Value(stringValue: istioVersion),
        ])
        node.userAgentName = userAgentName
        return node
    }

    /// A plain node with just an ID (and optionally a cluster), for control planes that need nothing more.
    public static func named(_ id: String, cluster: String = "") -> Envoy_Config_Core_V3_Node {
        var node = Envoy_Config_Core_V3_Node()
        node.id = id
        node.cluster = cluster
        node.userAgentName = userAgentName
        return node
    }
}
