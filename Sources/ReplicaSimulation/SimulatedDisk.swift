import ReplicaCore

/// A disk with a volatile write cache: writes are visible to reads at once but become
/// durable only at a flush; a crash keeps, drops or tears (per 512-byte sector) each write
/// not yet flushed, as the seeded generator decides.
final class SimulatedDisk: BlockTarget, @unchecked Sendable {
    let size: Int64
    let logicalBlockSize = 512
    private var durable: [UInt8]
    private var cache: [(offset: Int64, bytes: [UInt8])] = []
    /// Reads and writes touching this range fail with EIO (a failing area of the medium).
    var failing: Range<Int64>?
    /// Writes touching this range fail with EIO, reads work (a meta-data area that cannot be
    /// written: a full device, a failing write path).
    var failingWrites: Range<Int64>?

    /// True while any fault is armed.
    var isFailing: Bool { failing != nil || failingWrites != nil }

    init(size: Int64) {
        self.size = size
        durable = [UInt8](repeating: 0, count: Int(size))
    }

    /// What reads return now (the durable bytes with the cached writes over them).
    func contents(_ range: Range<Int64>) -> [UInt8] {
        var bytes = Array(durable[Int(range.lowerBound)..<Int(range.upperBound)])
        bytes.withUnsafeMutableBytes { target in
            for write in cache {
                let start = max(write.offset, range.lowerBound), end = min(write.offset + Int64(write.bytes.count), range.upperBound)
                guard start < end else { continue }
                write.bytes.withUnsafeBytes { source in
                    (target.baseAddress! + Int(start - range.lowerBound)).copyMemory(from: source.baseAddress! + Int(start - write.offset), byteCount: Int(end - start))
                }
            }
        }
        return bytes
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        try check(.read, offset, buffer.count)
        let bytes = contents(offset..<(offset + Int64(buffer.count)))
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        try check(.write, offset, buffer.count)
        try checkWrite(offset, buffer.count)
        cache.append((offset, Array(buffer)))
        if cache.count > 256 { flushCache() }  // a bounded cache writes back on its own
    }

    func flush() throws(BlockIOError) { flushCache() }

    func discard(at offset: Int64, length: Int64) throws(BlockIOError) {
        try writeZeroes(at: offset, length: length)
    }

    func writeZeroes(at offset: Int64, length: Int64) throws(BlockIOError) {
        try check(.write, offset, Int(length))
        try checkWrite(offset, Int(length))
        cache.append((offset, [UInt8](repeating: 0, count: Int(length))))
    }

    private func check(_ operation: BlockIOError.Operation, _ offset: Int64, _ length: Int) throws(BlockIOError) {
        guard offset >= 0, offset + Int64(length) <= size else {
            throw BlockIOError(operation: operation, offset: offset, length: Int64(length), errno: 22, detail: "simulated disk")
        }
        if let failing, failing.overlaps(offset..<(offset + Int64(length))) {
            throw BlockIOError(operation: operation, offset: offset, length: Int64(length), errno: 5, detail: "simulated medium error")
        }
    }

    private func checkWrite(_ offset: Int64, _ length: Int) throws(BlockIOError) {
        if let failingWrites, failingWrites.overlaps(offset..<(offset + Int64(length))) {
            throw BlockIOError(operation: .write, offset: offset, length: Int64(length), errno: 5, detail: "simulated meta-data write error")
        }
    }

    private func flushCache() {
        for write in cache { store(write.bytes[...], at: Int(write.offset)) }
        cache.removeAll()
    }

    private func store(_ bytes: ArraySlice<UInt8>, at offset: Int) {
        durable.withUnsafeMutableBytes { raw in
            bytes.withUnsafeBytes { (raw.baseAddress! + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
    }

    /// Power loss: each unflushed write is lost, kept or torn. Returns how many were not kept whole.
    func crash(_ random: inout SeededGenerator) -> Int {
        var damaged = 0
        for write in cache {
            switch random.next() % 3 {
            case 0:
                damaged += 1
            case 1:
                store(write.bytes[...], at: Int(write.offset))
            default:
                damaged += 1
                for sector in stride(from: 0, to: write.bytes.count, by: 512) where random.next() % 2 == 0 {
                    let at = Int(write.offset) + sector
                    store(write.bytes[sector..<(sector + 512)], at: at)
                }
            }
        }
        cache.removeAll()
        return damaged
    }
}

/// A read for the peer held by the simulated runtime: its bytes are what the disk holds when
/// they are taken (when the frame arrives), as with a spliced read of the page cache.
final class SimulatedHeldRead: HeldDataStorage, @unchecked Sendable {
    private let disk: SimulatedDisk
    private let range: Range<Int64>

    init(disk: SimulatedDisk, range: Range<Int64>) {
        self.disk = disk
        self.range = range
    }

    var count: Int { range.count }

    func takeBytes() throws(BlockIOError) -> [UInt8] { disk.contents(range) }
}
