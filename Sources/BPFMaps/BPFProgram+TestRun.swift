#if os(Linux)
import CLibBPF

/// The outcome of running a program on a synthetic input (``BPFProgram/testRun(packet:repeat:)``).
public struct TestRunResult: Sendable, Hashable {
    /// The program's return value (for tc: `TC_ACT_OK` 0, `TC_ACT_SHOT` 2, ...).
    public var returnValue: UInt32
    /// The packet after the program ran (programs may rewrite it).
    public var output: [UInt8]
    /// Average run time per repetition reported by the kernel, in nanoseconds.
    public var durationNanoseconds: UInt32
}

extension BPFProgram {
    /// Runs the program in the kernel on `packet` (an Ethernet frame for tc
    /// programs) without attaching it (`BPF_PROG_TEST_RUN`): the program sees
    /// and updates the same maps as when attached.
    public func testRun(packet: [UInt8], repeat count: Int = 1) throws(BPFError) -> TestRunResult {
        guard packet.count >= 14 else {
            throw .invalidArgument(operation: "test run \(name)", argument: "packet: at least an Ethernet header (14 bytes)")
        }
        guard count >= 1 else { throw .invalidArgument(operation: "test run \(name)", argument: "repeat must be at least 1") }
        let name = self.name
        return try fd.withFD { fd throws(BPFError) -> TestRunResult in
            var output = [UInt8](repeating: 0, count: packet.count + 256)
            var outputSize = UInt32(output.count)
            var returnValue: UInt32 = 0
            var duration: UInt32 = 0
            let rc = packet.withUnsafeBytes { input in
                output.withUnsafeMutableBytes { out in
                    swiftmesh_test_run(fd, input.baseAddress, UInt32(input.count), out.baseAddress, &outputSize,
                                       Int32(count), &returnValue, &duration)
                }
            }
            guard rc == 0 else {
                throw BPFError.from(errno: -rc, operation: "test run \(name)", invalid: "packet (too short or not valid for this program type)")
            }
            return TestRunResult(returnValue: returnValue, output: Array(output.prefix(Int(outputSize))), durationNanoseconds: duration)
        }
    }
}
#endif
