import Synchronization

/// A plain lock for the transport's small critical sections.
final class NSLockShim: Sendable {
    private let mutex = Mutex(())

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        try mutex.withLock { _ in try body() }
    }
}
