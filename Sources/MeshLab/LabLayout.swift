import Foundation

/// Where a lab keeps its state (default `/run/swift-mesh-lab`): what `down`
/// needs after a crash, the manifests the control plane watches, the CA, each
/// node's credential and ZDS socket, logs and process ids.
///
/// ```
/// lab.json                     the topology and where it came from
/// manifests/                   the applied manifests (the control plane watches this copy)
/// ca/                          the mesh CA
/// nodes/NODE/credential/       the node's credential for its ztunnel
/// nodes/NODE/enrollments.json  the pods the node agent enrolls (written by up/apply)
/// nodes/NODE/status.json       what became of each (written by the node agent)
/// nodes/NODE/ztunnel.sock      the node agent's ZDS socket
/// logs/NAME.log, pids/NAME.pid every component's and pod's output and process id
/// ```
public struct LabLayout: Sendable {
    public var root: String

    public init(root: String = ProcessInfo.processInfo.environment["MESH_LAB_STATE"] ?? "/run/swift-mesh-lab") {
        self.root = root
    }

    public var record: String { root + "/lab.json" }
    public var manifests: String { root + "/manifests" }
    public var ca: String { root + "/ca" }
    public var logs: String { root + "/logs" }
    public var pids: String { root + "/pids" }
    public func node(_ name: String) -> String { root + "/nodes/" + name }
    public func credential(_ node: String) -> String { self.node(node) + "/credential" }
    public func enrollments(_ node: String) -> String { self.node(node) + "/enrollments.json" }
    public func status(_ node: String) -> String { self.node(node) + "/status.json" }
    public func zdsSocket(_ node: String) -> String { self.node(node) + "/ztunnel.sock" }
    public func log(_ name: String) -> String { logs + "/" + name + ".log" }
    public func pid(_ name: String) -> String { pids + "/" + name + ".pid" }

    /// Creates the directories.
    public func prepare(nodes: [String]) throws(LabError) {
        do {
            for directory in [root, manifests, logs, pids] + nodes.map(node) {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
        } catch {
            throw .invalid("cannot create \(root): \(error)")
        }
    }

    func write<T: Encodable>(_ value: T, to path: String) throws(LabError) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(value)
            // Written beside and renamed, so a reader never sees half a file.
            let temporary = path + ".tmp"
            try data.write(to: URL(fileURLWithPath: temporary))
            if rename(temporary, path) != 0 { throw LabError.invalid("rename \(temporary): errno \(errno)") }
        } catch {
            throw .invalid("cannot write \(path): \(error)")
        }
    }

    func read<T: Decodable>(_ type: T.Type, from path: String) -> T? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(type, from: data)
    }
}

/// What `lab.json` records.
public struct LabRecord: Codable, Sendable {
    /// The manifests directory `up` or the last `apply` read.
    public var source: String
    /// The directory holding `ztunnel`, `mesh-controlplane` and `mesh-lab`.
    public var binaries: String
    public var topology: LabTopology
    /// How `up` ran the control plane (nil in records written before replicas existed: one, no flags).
    public var controlPlane: LabControlPlane?
}

/// One pod a node agent should enroll (`enrollments.json`).
public struct LabEnrollment: Codable, Sendable, Hashable {
    public var uid: String
    public var namespace: String
    public var name: String
    public var serviceAccount: String
    public var netns: String
}

/// What became of one enrollment (`status.json`, by uid).
public struct LabEnrollmentStatus: Codable, Sendable, Hashable {
    /// `pending`, `captured` or `refused`.
    public var state: String
    /// Why it was refused.
    public var error: String?
}
