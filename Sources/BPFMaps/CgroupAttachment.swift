#if os(Linux)
import CLibBPF
import Glibc

/// Cgroup hooks a program can be attached to.
public enum CgroupAttachPoint: UInt32, Sendable, Hashable {
    /// `BPF_CGROUP_INET4_CONNECT`: `connect()` of IPv4 sockets.
    case connect4 = 10
    /// `BPF_CGROUP_INET6_CONNECT`: `connect()` of IPv6 sockets.
    case connect6 = 11
    /// `BPF_CGROUP_SOCK_OPS`: TCP socket events.
    case sockOps = 3
}

/// A program attached to a cgroup (v2) through a BPF link
/// (`bpf_link_create`); ``close()`` or deinit detaches it.
public final class CgroupAttachment: Sendable {
    /// The cgroup directory.
    public let cgroupPath: String
    /// The hook.
    public let attachPoint: CgroupAttachPoint
    let link: OwnedFileDescriptor

    /// Attaches `program` to the cgroup v2 directory `cgroupPath`
    /// (e.g. `/sys/fs/cgroup/unified/NAME`). `attachPoint` defaults to the one
    /// libbpf derived from the program's section.
    public init(program: BPFProgram, cgroupPath: String, attachPoint: CgroupAttachPoint? = nil) throws(BPFError) {
        guard let point = attachPoint ?? CgroupAttachPoint(rawValue: program.expectedAttachType) else {
            throw .invalidArgument(operation: "attach \(program.name) to cgroup", argument: "program: section \(program.section) is not a cgroup connect4/connect6/sockops program")
        }
        let cg = open(cgroupPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard cg >= 0 else {
            let err = errno
            throw err == ENOENT ? .fileNotFound(path: cgroupPath) : .from(errno: err, operation: "open cgroup \(cgroupPath)")
        }
        defer { Glibc.close(cg) }
        let linkFD = try program.fd.withFD { fd throws(BPFError) -> Int32 in
            let rc = bpf_link_create(fd, cg, bpf_attach_type(rawValue: point.rawValue), nil)
            guard rc >= 0 else {
                throw BPFError.from(errno: -rc, operation: "attach \(program.name) to cgroup \(cgroupPath)",
                                    invalid: "attach point \(point) does not match the program type, or the path is not a cgroup v2 directory")
            }
            return rc
        }
        self.cgroupPath = cgroupPath
        self.attachPoint = point
        self.link = OwnedFileDescriptor(linkFD, what: "cgroup link")
    }

    /// Detaches the program (closes the link).
    public func close() { link.close() }
}
#endif
