/// Bits a SyncTarget's resync writes cleared while those writes may still sit in the disk's
/// volatile cache. Until a flush covers them, a bitmap save shows them out of sync: a crash
/// that loses the writes must not find the bitmap on disk saying the blocks are in sync (DRBD
/// flushes the data before a bitmap write-out that clears bits).
struct ResyncClearsBeforeFlush: Sendable {
    /// Bit ranges cleared by resync writes, each with the number of the last write that cleared it.
    private(set) var ranges: [(bits: Range<Int64>, sequence: UInt64)] = []
    private var sequence: UInt64 = 0
    /// Flushes in flight and the last clear each covers (a flush waits for every earlier I/O).
    private var flushes: [LocalIOID: UInt64] = [:]

    /// A resync write cleared `bits` (adjacent to the last range, they join it).
    mutating func cleared(_ bits: Range<Int64>) {
        sequence &+= 1
        if let last = ranges.last, last.bits.upperBound == bits.lowerBound {
            ranges[ranges.count - 1] = (last.bits.lowerBound..<bits.upperBound, sequence)
        } else {
            ranges.append((bits, sequence))
        }
    }

    /// A flush was submitted: once done, it covers every clear recorded so far.
    mutating func flushSubmitted(_ id: LocalIOID) { flushes[id] = sequence }

    /// Local I/O `id` ended: a successful flush returns the ranges it made durable (their
    /// pages must be saved again, now showing the bits cleared).
    mutating func completed(_ id: LocalIOID, succeeded: Bool) -> [Range<Int64>] {
        guard let covered = flushes.removeValue(forKey: id), succeeded else { return [] }
        let durable = ranges.filter { $0.sequence <= covered }.map(\.bits)
        ranges.removeAll { $0.sequence <= covered }
        return durable
    }
}
