import Foundation
import XDSServer

/// istiod's `/debug/syncz`: one entry per connected client with, per xDS
/// type, the version and nonce last sent and last acknowledged.
public enum SyncStatus {
    /// The JSON document (an array, sorted by node ID).
    public static func json(_ clients: [XDSConnectionStatus]) -> String {
        let formatter = ISO8601DateFormatter()
        let entries: [[String: Any]] = clients.sorted { ($0.nodeID, $0.id) < ($1.nodeID, $1.id) }.map { client in
            var types: [String: Any] = [:]
            for (typeURL, status) in client.types {
                var entry: [String: Any] = [
                    "sent_version": status.sentVersion, "sent_nonce": status.sentNonce,
                    "acked_version": status.ackedVersion, "acked_nonce": status.ackedNonce,
                    "synced": status.synced,
                ]
                if let nack = status.lastNack { entry["last_nack"] = nack }
                types[typeURL] = entry
            }
            return ["node": client.nodeID, "stream": client.id, "variant": client.variant,
                    "connected_at": formatter.string(from: client.connectedAt), "types": types]
        }
        guard let data = try? JSONSerialization.data(withJSONObject: entries, options: [.prettyPrinted, .sortedKeys]) else { return "[]" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
