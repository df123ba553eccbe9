import Synchronization

/// How many jobs wait on a serial queue (so that a caller may do a job inline, in order, when
/// none does).
final class QueueDepth: Sendable {
    private let count = Atomic<Int>(0)

    /// No job is queued or running.
    var isIdle: Bool { count.load(ordering: .acquiring) == 0 }
    /// A job was queued.
    func enter() { count.add(1, ordering: .acquiringAndReleasing) }
    /// A job finished.
    func leave() { count.subtract(1, ordering: .acquiringAndReleasing) }
}
