import Foundation

/// Counts state changes of any number of runtimes and lets threads wait for the next one
/// (``ReplicationRuntime`` bumps it when a volume's role, connection or disk state changes):
/// how an events stream waits for news without polling.
public final class StateChangeSignal: @unchecked Sendable {
    private let condition = NSCondition()
    private var version: UInt64 = 0

    /// A signal with no change yet.
    public init() {}

    /// The number of changes so far.
    public var current: UInt64 { condition.withLock { version } }

    /// Records a change and wakes the waiters.
    public func bump() {
        condition.withLock {
            version &+= 1
            condition.broadcast()
        }
    }

    /// Waits until the count differs from `seen` or `seconds` pass; returns the count.
    @discardableResult
    public func wait(after seen: UInt64, seconds: Double) -> UInt64 {
        let deadline = Date().addingTimeInterval(seconds)
        return condition.withLock {
            while version == seen, condition.wait(until: deadline) {}
            return version
        }
    }
}
