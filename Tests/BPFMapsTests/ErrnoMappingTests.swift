@testable import BPFMaps
import Testing

/// Every errno the kernel returns for BPF operations becomes the documented case.
@Suite struct ErrnoMappingTests {
    @Test("errno to typed error", arguments: [
        (Int32(1), BPFError.permissionDenied(operation: "op")),
        (13, .permissionDenied(operation: "op")),
        (2, .keyNotFound(operation: "op")),
        (17, .keyExists(operation: "op")),
        (7, .mapFull(operation: "op")),
        (28, .mapFull(operation: "op")),
        (22, .invalidArgument(operation: "op", argument: "the key")),
        (95, .notSupported(operation: "op")),
        (524, .notSupported(operation: "op")),
        (16, .busy(operation: "op")),
        (9, .closed("op")),
        (12, .system(operation: "op", errno: 12)),
    ])
    func mapping(errno: Int32, expected: BPFError) {
        #expect(BPFError.from(errno: errno, operation: "op", invalid: "the key") == expected)
    }

    @Test("unknown errnos keep their number in the message")
    func unknown() {
        #expect(BPFError.system(operation: "op", errno: 12).description == "op: ENOMEM (12)")
        #expect(BPFError.system(operation: "op", errno: 4095).description == "op: errno 4095")
        #expect(BPFError.loadFailed(object: "x.o", errno: 13).description.contains("EACCES (13)"))
    }
}
