#if os(Linux)
import CLibBPF
import Logging

/// Routes libbpf's own messages (including verifier logs) to swift-log under
/// the label `swift-mesh.libbpf` instead of stderr.
enum LibBPFLogging {
    static let logger = Logger(label: "swift-mesh.libbpf")

    /// Installs the print callback once per process (libbpf keeps it globally).
    static let installed: Bool = {
        _ = libbpf_set_print { level, format, args in
            guard let format, let args else { return 0 }
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = swiftmesh_vformat(&buffer, buffer.count, format, args)
            guard n > 0 else { return 0 }
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                .trimmingSuffixNewlines()
            switch level {
            case LIBBPF_WARN: LibBPFLogging.logger.warning("\(text)")
            case LIBBPF_INFO: LibBPFLogging.logger.debug("\(text)")
            default: LibBPFLogging.logger.trace("\(text)")
            }
            return n
        }
        return true
    }()
}

extension String {
    func trimmingSuffixNewlines() -> String {
        var s = Substring(self)
        while s.last == "\n" { s = s.dropLast() }
        return String(s)
    }
}
#endif
