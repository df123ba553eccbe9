/// Keeps local I/O to overlapping ranges in submission order: an I/O that overlaps one still
/// in flight waits until that one completes. (A resync block must never land after a newer
/// application write to the same block; two writes to one block land in the order sent.)
/// A flush waits for every earlier I/O and holds back every later one.
struct IOOrdering: Sendable {
    private var inFlight: [(LocalIOID, LocalIO)] = []
    private var waiting: [(LocalIOID, LocalIO)] = []

    private func blocked(_ io: LocalIO, by others: some Sequence<(LocalIOID, LocalIO)>) -> Bool {
        for (_, other) in others {
            if case .flush = io { return true }
            if case .flush = other { return true }
            if io.range.overlaps(other.range) { return true }
        }
        return false
    }

    /// Records `io`; returns true when it may start now.
    mutating func admit(_ id: LocalIOID, _ io: LocalIO) -> Bool {
        if blocked(io, by: inFlight) || blocked(io, by: waiting) {
            waiting.append((id, io))
            return false
        }
        inFlight.append((id, io))
        return true
    }

    /// Records the completion of `id`; returns the waiting I/Os that may start now, in order.
    mutating func finish(_ id: LocalIOID) -> [(LocalIOID, LocalIO)] {
        inFlight.removeAll { $0.0 == id }
        var started: [(LocalIOID, LocalIO)] = []
        var stillWaiting: [(LocalIOID, LocalIO)] = []
        for entry in waiting {
            if blocked(entry.1, by: inFlight) || blocked(entry.1, by: stillWaiting) {
                stillWaiting.append(entry)
            } else {
                inFlight.append(entry)
                started.append(entry)
            }
        }
        waiting = stillWaiting
        return started
    }

    /// The I/Os waiting for an overlapping one to finish, in order.
    var waitingIO: some Collection<LocalIO> { waiting.lazy.map(\.1) }

    /// Number of I/Os in flight (the `lo` counter).
    var count: Int { inFlight.count }
}
