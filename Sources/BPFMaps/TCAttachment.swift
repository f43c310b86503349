#if os(Linux)
import CLibBPF
import Glibc
import Logging
import Synchronization

/// Where on an interface a tc program runs.
public enum TCDirection: Sendable, Hashable {
    /// Packets received by the interface (clsact ingress).
    case ingress
    /// Packets sent by the interface (clsact egress).
    case egress

    /// The `egress` argument of the shim's tc functions.
    var shimEgress: Int32 { self == .egress ? 1 : 0 }
}

/// A tc program attached to an interface's clsact hook (libbpf
/// `bpf_tc_hook_create` + `bpf_tc_attach`); ``close()`` or deinit detaches it.
///
/// The interface may live in another network namespace (`networkNamespace`,
/// e.g. `/var/run/netns/NAME`): attach and detach switch the calling thread
/// into it for the duration of the netlink calls.
public final class TCAttachment: Sendable {
    /// Interface name.
    public let interface: String
    /// Interface index in its namespace.
    public let interfaceIndex: Int32
    /// Ingress or egress.
    public let direction: TCDirection
    /// Network namespace path, nil for the caller's.
    public let networkNamespace: String?
    /// tc filter handle.
    public let handle: UInt32
    /// tc filter priority.
    public let priority: UInt32
    /// Kernel id of the attached program.
    public let programID: UInt32
    private let attached: Mutex<Bool>
    private let logger: Logger

    /// Attaches `program` (a `SEC("tc")` program) to `interface`.
    ///
    /// Fails with ``BPFError/keyExists(operation:)`` when a filter with the same
    /// handle and priority is already there.
    public init(program: BPFProgram, interface: String, direction: TCDirection, networkNamespace: String? = nil,
                handle: UInt32 = 1, priority: UInt32 = 1, logger: Logger = Logger(label: "swift-mesh.bpf")) throws(BPFError) {
        let index = try NetworkNamespace.run(in: networkNamespace) { () throws(BPFError) -> Int32 in
            let index = try NetworkNamespace.interfaceIndex(interface)
            try program.fd.withFD { fd throws(BPFError) in
                let rc = swiftmesh_tc_attach(index, direction.shimEgress, fd, handle, priority)
                guard rc == 0 else {
                    throw BPFError.from(errno: -rc, operation: "attach \(program.name) to tc \(direction) of \(interface)",
                                        invalid: "program (must be a tc/sched_cls program) or handle/priority")
                }
            }
            return index
        }
        self.interface = interface
        self.interfaceIndex = index
        self.direction = direction
        self.networkNamespace = networkNamespace
        self.handle = handle
        self.priority = priority
        self.programID = program.id
        self.attached = Mutex(true)
        self.logger = logger
        logger.debug("attached tc program", metadata: ["program": "\(program.name)", "interface": "\(interface)", "direction": "\(direction)"])
    }

    deinit {
        do { try close() } catch { logger.warning("tc detach failed", metadata: ["error": "\(error)"]) }
    }

    /// Whether the filter is still installed (queried from the kernel).
    public var isAttached: Bool {
        guard attached.withLock({ $0 }) else { return false }
        let id = try? NetworkNamespace.run(in: networkNamespace) { () throws(BPFError) -> Int32 in
            swiftmesh_tc_query(interfaceIndex, direction.shimEgress, handle, priority)
        }
        return (id ?? -1) == Int32(bitPattern: programID)
    }

    /// Detaches the program; a vanished interface or namespace counts as detached.
    public func close() throws(BPFError) {
        let wasAttached = attached.withLock { v in defer { v = false }; return v }
        guard wasAttached else { return }
        let name = interface
        let dir = direction
        do {
            try NetworkNamespace.run(in: networkNamespace) { () throws(BPFError) in
                let rc = swiftmesh_tc_detach(interfaceIndex, direction.shimEgress, handle, priority)
                if rc != 0 && -rc != ENOENT && -rc != ENODEV && -rc != EINVAL {
                    throw BPFError.from(errno: -rc, operation: "detach tc \(dir) of \(name)")
                }
            }
        } catch .fileNotFound {
            // The namespace is gone, and with it the interface and its filters.
        }
    }
}
#endif
