import Synchronization

/// A ``BlockTarget`` in memory, for unit tests, the simulator and benchmarks. Sparse: only
/// written 64 KiB chunks take memory. Can be told to fail I/O at chosen offsets.
public final class MemoryBlockTarget: BlockTarget {
    private static let chunkSize = 64 * 1024

    private struct Storage {
        var chunks: [Int64: [UInt8]] = [:]
        var failingRanges: [Range<Int64>] = []
    }

    /// Size in bytes.
    public let size: Int64
    /// Logical block size.
    public let logicalBlockSize: Int
    private let storage = Mutex(Storage())

    /// Creates a zero-filled target of `size` bytes.
    public init(size: Int64, logicalBlockSize: Int = 512) {
        self.size = size
        self.logicalBlockSize = logicalBlockSize
    }

    /// Makes every I/O touching `range` fail with EIO (for fault tests).
    public func injectFailure(in range: Range<Int64>) {
        storage.withLock { $0.failingRanges.append(range) }
    }

    /// Removes all injected failures.
    public func clearFailures() {
        storage.withLock { $0.failingRanges.removeAll() }
    }

    private func checkFailure(_ storage: Storage, _ op: BlockIOError.Operation, _ offset: Int64, _ length: Int64) throws(BlockIOError) {
        let range = offset..<(offset + max(length, 1))
        if storage.failingRanges.contains(where: { $0.overlaps(range) }) {
            throw BlockIOError(operation: op, offset: offset, length: length, errno: 5, detail: "injected failure")
        }
    }

    private func forEachChunk(_ offset: Int64, _ length: Int, _ body: (Int64, Int, Int, Int) -> Void) {
        var done = 0
        while done < length {
            let position = offset + Int64(done)
            let chunk = position / Int64(Self.chunkSize)
            let inChunk = Int(position % Int64(Self.chunkSize))
            let count = min(Self.chunkSize - inChunk, length - done)
            body(chunk, inChunk, done, count)
            done += count
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        try checkRange(.read, offset: offset, length: Int64(buffer.count))
        try storage.withLock { (storage) throws(BlockIOError) in
            try checkFailure(storage, .read, offset, Int64(buffer.count))
            forEachChunk(offset, buffer.count) { chunk, inChunk, done, count in
                let target = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + count)])
                if let bytes = storage.chunks[chunk] {
                    bytes.withUnsafeBytes { target.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[inChunk..<(inChunk + count)])) }
                } else {
                    target.initializeMemory(as: UInt8.self, repeating: 0)
                }
            }
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(BlockIOError) {
        try checkRange(.write, offset: offset, length: Int64(buffer.count))
        try storage.withLock { (storage) throws(BlockIOError) in
            try checkFailure(storage, .write, offset, Int64(buffer.count))
            forEachChunk(offset, buffer.count) { chunk, inChunk, done, count in
                // Mutate the stored chunk in place (no copy of the 64 KiB array).
                storage.chunks[chunk, default: [UInt8](repeating: 0, count: Self.chunkSize)].withUnsafeMutableBytes { target in
                    UnsafeMutableRawBufferPointer(rebasing: target[inChunk..<(inChunk + count)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[done..<(done + count)]))
                }
            }
        }
    }

    public func flush() throws(BlockIOError) {}

    public func discard(at offset: Int64, length: Int64) throws(BlockIOError) {
        try writeZeroes(at: offset, length: length)
    }

    public func writeZeroes(at offset: Int64, length: Int64) throws(BlockIOError) {
        try checkRange(.writeZeroes, offset: offset, length: length)
        try storage.withLock { (storage) throws(BlockIOError) in
            try checkFailure(storage, .writeZeroes, offset, length)
            forEachChunk(offset, Int(length)) { chunk, inChunk, _, count in
                guard var bytes = storage.chunks[chunk] else { return }
                if count == Self.chunkSize {
                    storage.chunks[chunk] = nil
                    return
                }
                for i in inChunk..<(inChunk + count) { bytes[i] = 0 }
                storage.chunks[chunk] = bytes
            }
        }
    }
}
