import Foundation
import MeshProto
import SwiftProtobuf
import Testing
import XDSClient
import XDSServer

/// Runs an ADSClient (plaintext, fast reconnect backoff) for the duration of `body`, then shuts it down and waits for `run()` to return.
public func withADSClient<T: Sendable>(
    port: Int,
    variant: ADSClient.Variant,
    node: String = "node-1",
    configure: (inout ADSClient.Configuration) -> Void = { _ in },
    _ body: @Sendable (ADSClient) async throws -> T
) async throws -> T {
    var configuration = ADSClient.Configuration(host: "127.0.0.1", port: port, variant: variant, node: XDSNode.named(node))
    configuration.backoff = ReconnectBackoff(initial: .milliseconds(10), maximum: .milliseconds(200))
    configure(&configuration)
    let client = ADSClient(configuration: configuration)
    let running = Task { await client.run() }
    defer { client.shutdown() }
    let result = try await body(client)
    client.shutdown()
    await running.value
    return result
}

/// Reads a watch from a test: `next(where:)` skips updates until one matches (with a hang guard).
public final class WatchReader<Value: Sendable>: Sendable {
    private let mailbox = Mailbox<XDSWatchUpdate<Value>>()
    private let task: Task<Void, Never>

    public init(_ stream: AsyncStream<XDSWatchUpdate<Value>>) {
        let mailbox = self.mailbox
        task = Task {
            for await update in stream { await mailbox.put(update) }
            await mailbox.close()
        }
    }

    deinit { task.cancel() }

    public func next(_ what: String = "a watch update", where predicate: (XDSWatchUpdate<Value>) -> Bool = { _ in true }) async throws -> XDSWatchUpdate<Value> {
        while true {
            guard let update = await mailbox.take() else { throw TestTimeout(what: what) }
            if predicate(update) { return update }
        }
    }
}

/// An Any with the right type URL and bytes that are not a valid message.
public func garbage(_ typeURL: String) -> Google_Protobuf_Any {
    var any = Google_Protobuf_Any()
    any.typeURL = typeURL
    any.value = Data([0xff, 0xff, 0xff])
    return any
}

public let bothVariants: [ADSClient.Variant] = [.stateOfTheWorld, .delta]
