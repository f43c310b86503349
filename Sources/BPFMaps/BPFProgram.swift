#if os(Linux)
import CLibBPF
import Glibc

/// A loaded BPF program: owns its file descriptor (a duplicate of the
/// object's), so it outlives the ``BPFObject`` it came from.
public final class BPFProgram: Sendable {
    /// Program name (function name in the C source).
    public let name: String
    /// Section name (e.g. `tc`, `cgroup/connect4`, `sockops`).
    public let section: String
    /// `enum bpf_prog_type` value.
    public let programType: UInt32
    /// `enum bpf_attach_type` that libbpf derived from the section.
    public let expectedAttachType: UInt32
    /// Kernel program id.
    public let id: UInt32
    let fd: OwnedFileDescriptor

    init(fd raw: Int32, name: String, section: String, programType: UInt32, expectedAttachType: UInt32) throws(BPFError) {
        var info = swiftmesh_prog_info()
        let rc = swiftmesh_prog_info(raw, &info)
        guard rc == 0 else {
            Glibc.close(raw)
            throw .from(errno: -rc, operation: "program info \(name)")
        }
        self.id = info.id
        self.name = name
        self.section = section
        self.programType = programType
        self.expectedAttachType = expectedAttachType
        self.fd = OwnedFileDescriptor(raw, what: "program \(name)")
    }

    /// Pins the program at `path` on a BPF file system.
    public func pin(at path: String) throws(BPFError) {
        try BPFFileSystem.requireBPFFS(directoryOf: path)
        try fd.withFD { fd throws(BPFError) in
            let rc = bpf_obj_pin(fd, path)
            guard rc == 0 else { throw .from(errno: -rc, operation: "pin program at \(path)", invalid: "path") }
        }
    }

    /// Closes this handle; attachments keep the program alive in the kernel.
    public func close() { fd.close() }
}
#endif
