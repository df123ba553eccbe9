/// Block storage that a replicated volume reads and writes: a file, a block device, memory,
/// or (for applications) a ``ReplicatedVolume`` itself.
///
/// Calls are synchronous and may block; the runtime calls them from dedicated I/O threads,
/// never from Swift's cooperative pool. Offsets and lengths are in bytes.
public protocol BlockTarget: Sendable {
    /// Size in bytes.
    var size: Int64 { get }
    /// Logical block size in bytes (512 or 4096): the alignment of direct I/O.
    var logicalBlockSize: Int { get }

    /// Reads `buffer.count` bytes at `offset` into `buffer`.
    /// - Throws: ``BlockIOError`` naming the operation and offset.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlockIOError)
    /// Writes `buffer` at `offset`.
    func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(BlockIOError)
    /// Makes every completed write durable.
    func flush() throws(BlockIOError)
    /// Tells the storage a range is unused (its content becomes undefined or zero).
    func discard(at offset: Int64, length: Int64) throws(BlockIOError)
    /// Makes a range read back as zeroes.
    func writeZeroes(at offset: Int64, length: Int64) throws(BlockIOError)
    /// A file descriptor whose page cache holds this target's data at the same offsets, from
    /// which the runtime may send resync blocks without copying them into memory (`splice`),
    /// and into which it may write received ones from where they are held; nil (the default)
    /// when there is none, as with `O_DIRECT`.
    var pageCacheDescriptor: Int32? { get }
    /// Which parts of `offset..<offset+length` hold data and which are holes (read back as
    /// zeroes without taking space), in order, covering the range. A target that cannot tell
    /// reports one extent of data (the default): "data" is always a safe answer.
    func allocation(at offset: Int64, length: Int64) throws(BlockIOError) -> [AllocationExtent]
}

/// A run of a target's bytes with one allocation status (``BlockTarget/allocation(at:length:)``).
public struct AllocationExtent: Sendable, Equatable {
    /// Bytes in the run.
    public var length: Int64
    /// True for a hole: no storage behind it, reads back as zeroes.
    public var isHole: Bool

    /// A run of `length` bytes.
    public init(length: Int64, isHole: Bool) {
        self.length = length
        self.isHole = isHole
    }
}

extension BlockTarget {
    /// No page cache to send from: data is read into memory.
    public var pageCacheDescriptor: Int32? { nil }

    /// All data: the target cannot tell holes apart.
    public func allocation(at offset: Int64, length: Int64) throws(BlockIOError) -> [AllocationExtent] {
        try checkRange(.allocation, offset: offset, length: length)
        return length > 0 ? [AllocationExtent(length: length, isHole: false)] : []
    }

    /// Reads `count` bytes at `offset` into a new array.
    public func read(count: Int, at offset: Int64) throws(BlockIOError) -> [UInt8] {
        try [UInt8](filling: count) { buffer throws(BlockIOError) in try read(into: buffer, at: offset) }
    }

    /// Writes `bytes` at `offset`.
    public func write(_ bytes: [UInt8], at offset: Int64) throws(BlockIOError) {
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(BlockIOError) in try write(buffer, at: offset) } }
        try result.get()
    }

    /// Checks that `offset..<offset+length` lies inside the target.
    public func checkRange(_ operation: BlockIOError.Operation, offset: Int64, length: Int64) throws(BlockIOError) {
        guard offset >= 0, length >= 0, offset <= size, length <= size - offset else {
            throw BlockIOError(operation: operation, offset: offset, length: length, errno: 22,
                               detail: "range \(offset)+\(length) is outside the device of \(size) bytes")
        }
    }
}
