#if os(Linux)
import BPFMaps
import Foundation
import Testing

/// With CI=true the privileged tests must really run: this test fails when
/// their prerequisites are missing, so a skip can never pass CI.
@Suite struct EnvironmentGateTests {
    @Test("CI=true requires root with CAP_BPF, bpffs, iproute2, cgroup v2 and built BPF objects")
    func privilegedPrerequisitesInCI() throws {
        guard Environment.isCI else { return }
        #expect(Environment.canUseBPF, "CI=true but BPF is unavailable: run the tests as root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)")
        #expect(Environment.bpffsMounted, "CI=true but /sys/fs/bpf is not bpffs: mount -t bpf bpf /sys/fs/bpf")
        #expect(Environment.hasIP, "CI=true but iproute2 (ip) is missing: apt-get install -y iproute2")
        #expect(Environment.hasBPFTool, "CI=true but bpftool is missing: apt-get install -y bpftool")
        #expect((try? run(["python3", "-c", "pass"]))?.status == 0, "CI=true but python3 (the TCP peers of the datapath tests) is missing")
        #expect(Environment.hasCgroup2, "CI=true but no cgroup v2 at \(Environment.cgroup2)")
        for name in ["mesh_tc", "mesh_sock"] {
            #expect(FileManager.default.fileExists(atPath: Environment.objectDirectory + "/\(name).o"),
                    "CI=true but \(name).o is missing in \(Environment.objectDirectory): run scripts/build-bpf")
        }
    }
}
#endif
