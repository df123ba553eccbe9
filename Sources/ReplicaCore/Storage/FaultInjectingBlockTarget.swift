import Synchronization

/// A ``BlockTarget`` that fails on purpose, over any other: for tests and fault drills of
/// what a node does when its disk or meta-data device fails (a write error, a torn write, an
/// error on the Nth write, an `fsync` that fails). Faults are armed and cleared while it runs.
public final class FaultInjectingBlockTarget: BlockTarget {
    /// A way to fail.
    public enum Fault: Sendable, Equatable {
        /// Every write touching the range fails with EIO, nothing written.
        case failWrites(in: Range<Int64>)
        /// The `count`-th write touching the range from now on fails with EIO, nothing written
        /// (once; the fault is then gone).
        case failWrite(number: Int, in: Range<Int64>)
        /// The next write touching the range writes its first half, then fails with EIO: a
        /// write torn by the device (once).
        case tearWrite(in: Range<Int64>)
        /// Every flush fails with EIO (an `fsync` error: what was written may not be durable).
        case failFlushes
        /// Every read touching the range fails with EIO.
        case failReads(in: Range<Int64>)
    }

    private struct State {
        var faults: [Fault] = []
        /// Writes seen per armed `failWrite` fault, by its index.
        var seen: [Int: Int] = [:]
        var writesFailed = 0
        var watched: Range<Int64>?
        var bytesWrittenInWatched = 0
    }

    /// The target the I/O goes to when it does not fail.
    public let underlying: any BlockTarget
    private let state = Mutex(State())

    /// A target that passes I/O to `underlying` unless a fault says otherwise.
    public init(_ underlying: any BlockTarget) { self.underlying = underlying }

    /// Arms `fault`.
    public func inject(_ fault: Fault) { state.withLock { $0.faults.append(fault) } }

    /// Removes every fault.
    public func clearFaults() {
        state.withLock {
            $0.faults.removeAll()
            $0.seen.removeAll()
        }
    }

    /// Writes failed (or torn) by a fault so far.
    public var writesFailed: Int { state.withLock { $0.writesFailed } }

    /// Counts the bytes written into `range` from now on (``bytesWrittenInWatchedRange``).
    public func watchWrites(in range: Range<Int64>) { state.withLock { $0.watched = range; $0.bytesWrittenInWatched = 0 } }

    /// Bytes written into the range given to ``watchWrites(in:)``.
    public var bytesWrittenInWatchedRange: Int { state.withLock { $0.bytesWrittenInWatched } }

    public var size: Int64 { underlying.size }
    public var logicalBlockSize: Int { underlying.logicalBlockSize }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        let range = offset..<(offset + Int64(max(buffer.count, 1)))
        let fails = state.withLock { state in
            state.faults.contains { if case .failReads(let failing) = $0 { failing.overlaps(range) } else { false } }
        }
        if fails { throw Self.injected(.read, offset, Int64(buffer.count)) }
        try underlying.read(into: buffer, at: offset)
    }

    /// What a write touching `range` meets: nothing, a failure, or a tear.
    private enum WriteOutcome { case proceed, fail, tear }

    private func outcome(ofWriteTo range: Range<Int64>) -> WriteOutcome {
        state.withLock { state in
            if let watched = state.watched, watched.overlaps(range) { state.bytesWrittenInWatched += range.count }
            for (index, fault) in state.faults.enumerated() {
                switch fault {
                case .failWrites(let failing) where failing.overlaps(range):
                    state.writesFailed += 1
                    return .fail
                case .failWrite(let number, let failing) where failing.overlaps(range):
                    let seen = state.seen[index, default: 0] + 1
                    state.seen[index] = seen
                    if seen == number {
                        state.faults[index] = .failWrites(in: 0..<0)  // spent
                        state.writesFailed += 1
                        return .fail
                    }
                case .tearWrite(let failing) where failing.overlaps(range):
                    state.faults[index] = .failWrites(in: 0..<0)  // spent
                    state.writesFailed += 1
                    return .tear
                default:
                    continue
                }
            }
            return .proceed
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        switch outcome(ofWriteTo: offset..<(offset + Int64(max(buffer.count, 1)))) {
        case .proceed:
            try underlying.write(buffer, at: offset)
        case .fail:
            throw Self.injected(.write, offset, Int64(buffer.count))
        case .tear:
            let half = buffer.count / 2 / 512 * 512
            if half > 0 { try underlying.write(UnsafeRawBufferPointer(rebasing: buffer[0..<half]), at: offset) }
            throw Self.injected(.write, offset, Int64(buffer.count), detail: "injected torn write (\(half) of \(buffer.count) bytes written)")
        }
    }

    public func flush() throws(BlockIOError) {
        let fails = state.withLock { $0.faults.contains(.failFlushes) }
        if fails { throw Self.injected(.flush, 0, 0) }
        try underlying.flush()
    }

    public func discard(at offset: Int64, length: Int64) throws(BlockIOError) {
        if outcome(ofWriteTo: offset..<(offset + max(length, 1))) != .proceed { throw Self.injected(.discard, offset, length) }
        try underlying.discard(at: offset, length: length)
    }

    /// What the underlying target reports (no fault touches it).
    public func allocation(at offset: Int64, length: Int64) throws(BlockIOError) -> [AllocationExtent] {
        try underlying.allocation(at: offset, length: length)
    }

    public func writeZeroes(at offset: Int64, length: Int64) throws(BlockIOError) {
        if outcome(ofWriteTo: offset..<(offset + max(length, 1))) != .proceed { throw Self.injected(.writeZeroes, offset, length) }
        try underlying.writeZeroes(at: offset, length: length)
    }

    private static func injected(_ operation: BlockIOError.Operation, _ offset: Int64, _ length: Int64, detail: String = "injected failure") -> BlockIOError {
        BlockIOError(operation: operation, offset: offset, length: length, errno: 5, detail: detail)
    }
}
