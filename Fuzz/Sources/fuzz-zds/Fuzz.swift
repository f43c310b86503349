import FuzzSupport
import Foundation
import MeshProto
@testable import NodeProxy
import SwiftProtobuf

// ZDS enrollment messages as ztunnel receives them from the node agent: raw
// WorkloadRequest bytes (with or without a passed descriptor) sent over a
// real SOCK_SEQPACKET Unix socket to a running ZDSClient (ztunnel's end),
// which decodes them, applies them through its ZDSWorkloadHandler and answers
// each with an Ack. The handler here records pods instead of capturing them
// (capture needs network namespaces and root), so what is fuzzed is the
// protobuf decoding, ZDSClient's checks and its descriptor handling.
//
// Each input is one ZDS connection: the client's ZdsHello is read, then up to
// 8 messages are sent, each framed in the input as one flag byte (bit 0: pass
// a descriptor, /dev/null, with it), a 2-byte big-endian length and the bytes.
// ZDSSocket.send(bytes:) is package access: `@testable import NodeProxy`.
//
// Invariants: every message is answered; a message that is not a
// WorkloadRequest, has no payload, or is an AddWorkload without a uid or a
// descriptor is refused with a reason; descriptors passed in are closed
// (the process's open descriptors do not grow).

private final class RecordingHandler: ZDSWorkloadHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var pods = Set<String>()

    func addWorkload(_ workload: ZDSWorkload, namespace: NetworkNamespace) async throws {
        namespace.close()
        lock.withLock { _ = pods.insert(workload.uid) }
    }

    func removeWorkload(uid: String) async { lock.withLock { _ = pods.remove(uid) } }
    func hasWorkload(uid: String) async -> Bool { lock.withLock { pods.contains(uid) } }
    func snapshotComplete(keeping uids: Set<String>) async { lock.withLock { pods.formIntersection(uids) } }
    func reset() { lock.withLock { pods.removeAll() } }
}

private struct Harness {
    let listener: ZDSListener
    let handler: RecordingHandler
    var baselineDescriptors = 0
    var inputs = 0
}

private var harness: Harness = {
    let directory = NSTemporaryDirectory() + "fuzz-zds-\(getpid())"
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = directory + "/zds.sock"
    unlink(path)
    guard let listener = try? ZDSListener(path: path) else { fatalError("cannot listen on \(path)") }
    let handler = RecordingHandler()
    let client = ZDSClient(path: path, handler: handler, workers: NamespaceWorkers(threads: 1), logger: Fuzz.quietLogger())
    Task.detached { await client.run() }
    return Harness(listener: listener, handler: handler)
}()

private func openDescriptors() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var reader = FuzzReader(Fuzz.bytes(data, size))
    harness.handler.reset()
    let connection: ZDSSocket
    do {
        connection = try harness.listener.accept()
        let (hello, descriptor) = try connection.receive(Istio_Workload_Zds_ZdsHello.self)
        if let descriptor { close(descriptor) }
        Fuzz.check(hello.version == .v1, "hello version \(hello.version)")
    } catch {
        fatalError("ZDS client did not connect: \(error)")
    }
    defer { connection.close() }

    var count = 0
    while !reader.isEmpty, count < 8 {
        count += 1
        let flags = reader.byte()
        let message = Array(reader.take(Int(reader.uint16())))
        // An empty datagram reads as end of stream on a SEQPACKET socket: ztunnel then reconnects.
        let passing: CInt? = flags & 1 == 1 ? open("/dev/null", O_RDONLY | O_CLOEXEC) : nil
        do {
            try connection.send(bytes: message, passing: passing)
        } catch {
            if let passing { close(passing) }
            break
        }
        if let passing { close(passing) }
        let ack: String
        do {
            let (response, descriptor) = try connection.receive(Istio_Workload_Zds_WorkloadResponse.self)
            if let descriptor { close(descriptor) }
            ack = response.ack.error
        } catch {
            Fuzz.check(message.isEmpty, "no answer to a \(message.count)-byte request: \(error)")
            break
        }
        guard let request = try? Istio_Workload_Zds_WorkloadRequest(serializedBytes: message) else {
            Fuzz.check(!ack.isEmpty, "an undecodable request was acknowledged")
            continue
        }
        switch request.payload {
        case nil:
            Fuzz.check(!ack.isEmpty, "a request without a payload was acknowledged")
        case .add(let add):
            if add.uid.isEmpty || passing == nil {
                Fuzz.check(!ack.isEmpty, "AddWorkload without a uid or a descriptor was acknowledged")
            } else {
                Fuzz.check(ack.isEmpty, "a well-formed AddWorkload was refused: \(ack)")
            }
        case .del:
            Fuzz.check(ack.isEmpty, "DelWorkload was refused: \(ack)")
        case .keep, .snapshotSent:
            break
        }
    }
    harness.inputs += 1
    if harness.inputs == 100 { harness.baselineDescriptors = openDescriptors() }
    if harness.inputs > 100, harness.inputs % 500 == 0 {
        let now = openDescriptors()
        Fuzz.check(now <= harness.baselineDescriptors + 16, "open descriptors grew from \(harness.baselineDescriptors) to \(now)")
    }
    return 0
}
