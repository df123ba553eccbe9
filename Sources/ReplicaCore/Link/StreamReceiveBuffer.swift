/// Bytes received from a stream socket through one buffer, so that messages that arrived
/// together (many small frames or requests) come with one `recv` instead of one or more per
/// message. A message body larger than what is buffered is received straight into its own
/// array. Used from one reading thread only.
public final class StreamReceiveBuffer<Failure: Error> {
    /// One `recv` into the buffer given: the number of bytes read (at least one), or the failure.
    public typealias Receive = (UnsafeMutableRawBufferPointer) throws(Failure) -> Int

    @usableFromInline let receive: Receive
    @usableFromInline let buffer: UnsafeMutableRawBufferPointer
    @usableFromInline var start = 0
    @usableFromInline var end = 0

    /// A buffer of `capacity` bytes filled by `receive`.
    public init(capacity: Int, receive: @escaping Receive) {
        self.receive = receive
        buffer = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Bytes received and not consumed yet.
    @inlinable public var buffered: Int { end - start }

    /// The first `count` buffered bytes (at most ``buffered``), for `body` to look at.
    @inlinable public func peek<Result>(_ count: Int, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        body(UnsafeRawBufferPointer(rebasing: buffer[start..<start + min(count, buffered)]))
    }

    /// Drops the first `count` buffered bytes (at most ``buffered``), looked at with ``peek(_:_:)``.
    @inlinable public func consume(_ count: Int) {
        precondition(count <= buffered, "consuming more than is buffered")
        start += count
    }

    /// Receives until at least `count` bytes (at most the capacity) are buffered.
    @inlinable public func fill(atLeast count: Int) throws(Failure) {
        precondition(count <= buffer.count, "more than the buffer holds")
        guard buffered < count else { return }
        if start > 0 {
            let left = buffered
            if left > 0 { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: left) }
            start = 0
            end = left
        }
        while end < count {
            end += try receive(UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
        }
    }

    /// The next `count` bytes: the buffered part copied, the rest received into the array.
    @inlinable public func take(_ count: Int) throws(Failure) -> [UInt8] {
        let fromBuffer = min(count, buffered)
        let bytes = try [UInt8](filling: count) { [self] raw throws(Failure) in
            if fromBuffer > 0 { raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[start..<start + fromBuffer])) }
            var done = fromBuffer
            while done < count { done += try receive(UnsafeMutableRawBufferPointer(rebasing: raw[done...])) }
        }
        start += fromBuffer
        return bytes
    }
}
