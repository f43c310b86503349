import Foundation

/// A queue that one side fills and the test drains; `take` returns nil when
/// closed or when a generous hang guard expires (never a timing assertion).
public actor Mailbox<Item: Sendable> {
    private var items: [Item] = []
    private var waiters: [UUID: CheckedContinuation<Item?, Never>] = [:]
    private var order: [UUID] = []
    private var closed = false

    public init() {}

    public func put(_ item: Item) {
        if let id = order.first, let waiter = waiters.removeValue(forKey: id) {
            order.removeFirst()
            waiter.resume(returning: item)
        } else {
            items.append(item)
        }
    }

    public func close() {
        closed = true
        for id in order { waiters.removeValue(forKey: id)?.resume(returning: nil) }
        order = []
    }

    public func take(guardSeconds: Double = 30) async -> Item? {
        if !items.isEmpty { return items.removeFirst() }
        if closed { return nil }
        let id = UUID()
        return await withCheckedContinuation { continuation in
            waiters[id] = continuation
            order.append(id)
            Task {
                try? await Task.sleep(for: .seconds(guardSeconds))
                self.expire(id)
            }
        }
    }

    private func expire(_ id: UUID) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        order.removeAll { $0 == id }
        waiter.resume(returning: nil)
    }
}
