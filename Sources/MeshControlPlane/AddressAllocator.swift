import PolicyEngine

/// The addresses of a cluster: those manifests give, and those allocated for
/// what they leave out.
public struct AddressPlan: Hashable, Sendable {
    /// Node name → pod CIDR.
    public var nodeCIDRs: [String: CIDR] = [:]
    /// Node name → address on the node network (the lab's wire).
    public var nodeIPs: [String: IPAddress] = [:]
    /// Pod `namespace/name` → its addresses (pending pods have none).
    public var podIPs: [String: [IPAddress]] = [:]
    /// Service `namespace/name` → cluster IP (headless Services have none).
    public var serviceIPs: [String: IPAddress] = [:]

    public init() {}
}

/// Fills in what manifests leave out, as Kubernetes would: a /24 pod CIDR per
/// node from 10.244.0.0/16, pod IPs from their node's CIDR, Service cluster IPs
/// from 10.96.0.0/16 and (for the lab) node IPs from 172.18.0.0/16.
///
/// The result is a pure function of the manifests, so the control plane and
/// the lab compute the same plan independently and across restarts. Each
/// object's preferred slot is a hash of its name, so adding or removing one
/// object moves no other unless its slot collides with theirs (then name
/// order decides; give `status.podIP` where an address must never move).
/// Addresses the manifests give are reserved first. IPv4 only.
public struct AddressAllocator: Sendable {
    /// Where node pod CIDRs are carved from.
    public var podRange: CIDR
    /// The prefix length of each node's pod CIDR.
    public var nodeCIDRPrefixLength: Int
    /// Where cluster IPs come from (the first host, `.1`, is kept for the `kubernetes` Service).
    public var serviceRange: CIDR
    /// Where node addresses come from (the first host, `.1`, is kept for the network's gateway).
    public var nodeRange: CIDR

    public init(podRange: CIDR = CIDR("10.244.0.0/16")!, nodeCIDRPrefixLength: Int = 24,
                serviceRange: CIDR = CIDR("10.96.0.0/16")!, nodeRange: CIDR = CIDR("172.18.0.0/16")!) {
        self.podRange = podRange
        self.nodeCIDRPrefixLength = nodeCIDRPrefixLength
        self.serviceRange = serviceRange
        self.nodeRange = nodeRange
    }

    /// Computes the plan; throws when a range is exhausted.
    public func plan(for state: ClusterState) throws(AddressAllocationError) -> AddressPlan {
        for range in [podRange, serviceRange, nodeRange] where range.address.family != .v4 {
            throw .unsupportedRange(range.description)
        }
        guard nodeCIDRPrefixLength >= podRange.prefixLength, nodeCIDRPrefixLength - podRange.prefixLength <= 16, nodeCIDRPrefixLength <= 30 else {
            throw .unsupportedRange("/\(nodeCIDRPrefixLength) node CIDRs in \(podRange)")
        }
        var plan = AddressPlan()
        // Node pod CIDRs: slots of /prefix inside podRange; every slot a given podCIDR overlaps is taken.
        let subnetCount = 1 << (nodeCIDRPrefixLength - podRange.prefixLength)
        var subnets = SlotPool(count: subnetCount, firstUsable: 0)
        for node in state.nodes {
            guard let cidr = node.podCIDR, cidr.address.family == .v4 else { continue }
            if podRange.contains(cidr) {
                let first = subnetIndex(cidr.address)
                let covered = cidr.prefixLength >= nodeCIDRPrefixLength ? 1 : 1 << (nodeCIDRPrefixLength - cidr.prefixLength)
                for slot in first..<min(subnetCount, first + covered) { subnets.reserve(slot) }
            } else if cidr.contains(podRange) {
                for slot in 0..<subnetCount { subnets.reserve(slot) }
            }
        }
        for node in state.nodes.sorted(by: { $0.name < $1.name }) {
            if let cidr = node.podCIDR { plan.nodeCIDRs[node.name] = cidr; continue }
            guard let slot = subnets.take(preferring: node.name) else { throw .exhausted(range: podRange.description, object: "Node \(node.name)") }
            plan.nodeCIDRs[node.name] = CIDR(address: offset(podRange.address, by: UInt64(slot) << UInt64(podRange.address.family.bitWidth - nodeCIDRPrefixLength)), prefixLength: nodeCIDRPrefixLength)
        }
        // Node addresses.
        var nodeSlots = SlotPool(count: hostCount(nodeRange), firstUsable: 2)
        for node in state.nodes { if let ip = node.internalIP, nodeRange.contains(ip) { nodeSlots.reserve(hostIndex(ip, in: nodeRange)) } }
        for node in state.nodes.sorted(by: { $0.name < $1.name }) {
            if let ip = node.internalIP { plan.nodeIPs[node.name] = ip; continue }
            guard let slot = nodeSlots.take(preferring: node.name) else { throw .exhausted(range: nodeRange.description, object: "Node \(node.name)") }
            plan.nodeIPs[node.name] = offset(nodeRange.address, by: UInt64(slot))
        }
        // Pod addresses: those given, then per node those left out.
        for pod in state.pods where pod.isMeshCandidate && !pod.podIPs.isEmpty { plan.podIPs[pod.key] = pod.podIPs }
        _ = try allocatePods(of: state, onNodes: nil, into: &plan)
        // Cluster IPs.
        var serviceSlots = SlotPool(count: hostCount(serviceRange), firstUsable: 2)
        for service in state.services { if let ip = service.clusterIP, serviceRange.contains(ip) { serviceSlots.reserve(hostIndex(ip, in: serviceRange)) } }
        let serviceKeys = state.services.map(\.key)
        for index in state.services.indices.sorted(by: { serviceKeys[$0] < serviceKeys[$1] }) where !state.services[index].headless {
            let service = state.services[index]
            if let ip = service.clusterIP { plan.serviceIPs[service.key] = ip; continue }
            guard let slot = serviceSlots.take(preferring: service.key) else { throw .exhausted(range: serviceRange.description, object: "Service \(service.key)") }
            plan.serviceIPs[service.key] = offset(serviceRange.address, by: UInt64(slot))
        }
        return plan
    }

    /// The plan of `state`, made from `previous`, the plan of a state that
    /// differs from `state` only in pods: `removed` in their old versions,
    /// `added` in their new ones (a changed pod is in both). Only the nodes
    /// those pods are on, or whose ranges hold their addresses, are allocated
    /// again; the result equals ``plan(for:)``. Also returns the pods whose
    /// addresses changed.
    public func plan(for state: ClusterState, updating previous: AddressPlan, removed: [ClusterPod], added: [ClusterPod])
        throws(AddressAllocationError) -> (plan: AddressPlan, moved: Set<String>) {
        var plan = previous
        var nodes = Set<String>()
        var touched = Set<String>()
        for pod in removed + added {
            if let node = pod.nodeName, plan.nodeCIDRs[node] != nil { nodes.insert(node) }
            for ip in pod.podIPs { for (name, cidr) in plan.nodeCIDRs where cidr.contains(ip) { nodes.insert(name) } }
            plan.podIPs[pod.key] = nil
            touched.insert(pod.key)
        }
        for pod in added where pod.isMeshCandidate && !pod.podIPs.isEmpty { plan.podIPs[pod.key] = pod.podIPs }
        touched.formUnion(try allocatePods(of: state, onNodes: nodes, into: &plan))
        return (plan, touched.filter { previous.podIPs[$0] != plan.podIPs[$0] })
    }

    /// Allocates an address to each running pod on `nodes` (nil: on every node)
    /// that the manifests leave without one, in name order, each preferring the
    /// slot its name hashes to. Returns the pods allocated.
    private func allocatePods(of state: ClusterState, onNodes nodes: Set<String>?, into plan: inout AddressPlan) throws(AddressAllocationError) -> [String] {
        let cidrs = nodes.map { nodes in plan.nodeCIDRs.filter { nodes.contains($0.key) } } ?? plan.nodeCIDRs
        guard !cidrs.isEmpty else { return [] }
        var podSlots: [String: SlotPool] = [:]
        for (name, cidr) in cidrs { podSlots[name] = SlotPool(count: hostCount(cidr), firstUsable: 2) }
        // Every address a manifest gives inside these ranges is taken, whichever pod gives it.
        for pod in state.pods {
            for ip in pod.podIPs {
                for (name, cidr) in cidrs where cidr.contains(ip) { podSlots[name]?.reserve(hostIndex(ip, in: cidr)) }
            }
        }
        let pending = state.pods.filter { pod in
            pod.isMeshCandidate && pod.podIPs.isEmpty && pod.nodeName.map { cidrs[$0] != nil } == true
        }
        var allocated: [String] = []
        for pod in pending.sorted(by: { $0.key < $1.key }) {
            let node = pod.nodeName!, cidr = cidrs[node]!
            guard let slot = podSlots[node]?.take(preferring: pod.key) else { throw .exhausted(range: cidr.description, object: "Pod \(pod.key)") }
            plan.podIPs[pod.key] = [offset(cidr.address, by: UInt64(slot))]
            allocated.append(pod.key)
        }
        return allocated
    }

    private func subnetIndex(_ address: IPAddress) -> Int {
        Int(hostIndex(address, in: podRange) >> (podRange.address.family.bitWidth - nodeCIDRPrefixLength))
    }

    /// Number of addresses in `cidr`, less the broadcast address (IPv4); capped so a pool stays small.
    private func hostCount(_ cidr: CIDR) -> Int {
        let bits = cidr.address.family.bitWidth - cidr.prefixLength
        let size = bits >= 20 ? 1 << 20 : 1 << bits
        return cidr.address.family == .v4 ? size - 1 : size
    }

    private func hostIndex(_ ip: IPAddress, in cidr: CIDR) -> Int {
        switch ip.family {
        case .v4: return Int(ip.v4Value - cidr.address.v4Value)
        case .v6: return Int(truncatingIfNeeded: ip.low &- cidr.address.low)
        }
    }

    private func offset(_ base: IPAddress, by value: UInt64) -> IPAddress {
        switch base.family {
        case .v4: return IPAddress(v4: base.v4Value &+ UInt32(truncatingIfNeeded: value))
        case .v6: return IPAddress(v6High: base.high, low: base.low &+ value)
        }
    }
}

/// Why an address could not be allocated.
public enum AddressAllocationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every address of `range` is taken.
    case exhausted(range: String, object: String)
    /// The allocator works on IPv4 ranges with node CIDRs of at most 2^16 per range.
    case unsupportedRange(String)

    public var description: String {
        switch self {
        case .exhausted(let range, let object): return "no free address left in \(range) for \(object)"
        case .unsupportedRange(let range): return "cannot allocate from \(range): only IPv4 ranges are supported"
        }
    }
}

/// Slots `firstUsable..<count`, each taken at most once; a name prefers the
/// slot its hash points at and probes upward from there.
private struct SlotPool {
    let count: Int
    let firstUsable: Int
    var used = Set<Int>()

    init(count: Int, firstUsable: Int) {
        self.count = count
        self.firstUsable = firstUsable
    }

    mutating func reserve(_ slot: Int) { used.insert(slot) }

    mutating func take(preferring name: String) -> Int? {
        let usable = count - firstUsable
        guard usable > 0 else { return nil }
        let start = Int(Self.fnv1a(name) % UInt64(usable))
        for step in 0..<usable {
            let slot = firstUsable + (start + step) % usable
            if used.insert(slot).inserted { return slot }
        }
        return nil
    }

    /// FNV-1a, 64 bit: stable across processes and platforms (unlike `Hasher`).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
