#if os(Linux)
import Logging
import Synchronization

/// The enforcement datapath (`bpf/mesh_tc.c`) of one workload, loaded and
/// ready for the node agent: typed handles on its maps, configuration, tc
/// attachment to the workload's interface, and verdict counters.
///
/// Node-wide maps (`mesh_ipcache`, `mesh_auth`, `mesh_events`) are pinned
/// under `pinRoot` and shared by every endpoint loaded with the same root;
/// the policy, configuration, counters and conntrack maps are this endpoint's.
/// ``close()`` (or deinit) detaches and closes everything.
public final class EndpointDatapath: Sendable {
    /// Node-wide ipcache (`mesh_ipcache_key` → `mesh_ipcache_value`).
    public let ipcache: BPFMap
    /// This endpoint's policy map (`mesh_policy_key` → `mesh_policy_value`).
    public let policy: BPFMap
    /// Node-wide mutual-auth map.
    public let auth: AuthMap
    /// Node-wide ring buffer of `mesh_auth_event` records.
    public let events: BPFMap
    /// Per-CPU verdict counters (`BPFVerdict` → `mesh_counter`).
    public let counters: BPFMap
    /// This endpoint's configuration (one `mesh_endpoint_config`).
    public let config: BPFMap
    /// This endpoint's conntrack (`mesh_ct_key` → `mesh_ct_value`).
    public let conntrack: BPFMap
    /// `mesh_tc_ingress`: packets delivered to the workload.
    public let ingressProgram: BPFProgram
    /// `mesh_tc_egress`: packets sent by the workload.
    public let egressProgram: BPFProgram
    private let attachments: Mutex<[TCAttachment]>

    /// Loads `objectPath` (normally `.build/bpf/mesh_tc.o`) with node-wide maps under `pinRoot`.
    public init(objectPath: String, pinRoot: String, logger: Logger = Logger(label: "swift-mesh.bpf")) throws(BPFError) {
        let object = try BPFObject.open(objectPath, pinRoot: pinRoot, logger: logger)
        defer { object.close() }
        try object.load()
        ipcache = try object.map(named: "mesh_ipcache")
        policy = try object.map(named: "mesh_policy")
        auth = try AuthMap(try object.map(named: "mesh_auth"))
        events = try object.map(named: "mesh_events")
        counters = try object.map(named: "mesh_counters")
        config = try object.map(named: "mesh_config")
        conntrack = try object.map(named: "mesh_ct")
        ingressProgram = try object.program(named: "mesh_tc_ingress")
        egressProgram = try object.program(named: "mesh_tc_egress")
        attachments = Mutex([])
    }

    deinit { close() }

    /// Sets the workload's identity and, per direction, whether a packet that
    /// matches no policy entry is dropped (default deny) or passed.
    public func configure(localIdentity: UInt32, defaultDenyIngress: Bool, defaultDenyEgress: Bool) throws(BPFError) {
        var flags: UInt32 = 0
        if defaultDenyIngress { flags |= UInt32(MESH_CONFIG_ENFORCE_INGRESS) }
        if defaultDenyEgress { flags |= UInt32(MESH_CONFIG_ENFORCE_EGRESS) }
        try config.update(UInt32(0), mesh_endpoint_config(local_identity: localIdentity, flags: flags))
    }

    /// Attaches the programs to the workload's `interface` (in `networkNamespace`,
    /// e.g. `/var/run/netns/NAME`, or the caller's): `.ingress` enforces what the
    /// workload receives, `.egress` what it sends.
    public func attach(interface: String, networkNamespace: String? = nil,
                       directions: Set<TCDirection> = [.ingress, .egress]) throws(BPFError) {
        for direction in [TCDirection.ingress, .egress] where directions.contains(direction) {
            let program = direction == .ingress ? ingressProgram : egressProgram
            let attachment = try TCAttachment(program: program, interface: interface, direction: direction,
                                              networkNamespace: networkNamespace)
            attachments.withLock { $0.append(attachment) }
        }
    }

    /// The tc attachments made by ``attach(interface:networkNamespace:directions:)``.
    public var currentAttachments: [TCAttachment] { attachments.withLock { $0 } }

    /// Packets and bytes per verdict, summed over CPUs.
    public func verdictCounts() throws(BPFError) -> [BPFVerdict: (packets: UInt64, bytes: UInt64)] {
        var out: [BPFVerdict: (packets: UInt64, bytes: UInt64)] = [:]
        for verdict in BPFVerdict.allCases {
            let perCPU = try counters.lookupPerCPU(verdict.rawValue, as: mesh_counter.self) ?? []
            out[verdict] = perCPU.reduce((UInt64(0), UInt64(0))) { ($0.0 + $1.packets, $0.1 + $1.bytes) }
        }
        return out
    }

    /// Detaches from every interface and closes all maps and programs.
    public func close() {
        let attached = attachments.withLock { a in defer { a.removeAll() }; return a }
        for attachment in attached { try? attachment.close() }
        for map in [ipcache, policy, auth.map, events, counters, config, conntrack] { map.close() }
        ingressProgram.close()
        egressProgram.close()
    }
}
#endif
