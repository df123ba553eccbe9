/// Reads frames from one byte stream through a ``StreamReceiveBuffer``: the frames that arrived
/// together (a batch of writes, a burst of acks) come with one receive. Where the stream can
/// splice (``SplicingStream``), a large block (a resync reply's or a replicated write's) is not
/// received into memory: it goes from the socket into pipes (``SplicedReceive``) and from there
/// into the disk. Every header is checked before its payload is read (``FrameHeader``).
final class StreamFrameReader {
    private let input: StreamReceiveBuffer<TransportError>
    private let stream: any ByteStream
    private let splicing: (any SplicingStream)?
    /// The previous frame's data was spliced: the stream is probably a run of large blocks, so
    /// the next header is read alone (what the buffer would read past it is the next block's
    /// data, which would then be copied).
    private var afterSplicedData = false

    /// Bytes read at most per receive (a frame's data beyond them is received in place).
    static let capacity = 64 << 10

    /// The parts of one frame as they came off the stream (the header checked for its bounds).
    struct RawFrame {
        var header: FrameHeader
        var fixed: [UInt8]
        /// The frame's data, unless it is `held`.
        var data: [UInt8]
        var held: SplicedReceive?
    }

    init(stream: any ByteStream) {
        self.stream = stream
        splicing = stream.splicing
        input = StreamReceiveBuffer(capacity: Self.capacity) { buffer throws(TransportError) in try stream.receive(into: buffer) }
    }

    /// True when the next frame is buffered whole: ``next()`` will not wait for it.
    var nextFrameIsBuffered: Bool {
        guard input.buffered >= FrameHeader.size, let header = try? bufferedHeader() else { return false }
        return input.buffered >= FrameHeader.size + Int(header.length)
    }

    /// The next frame; a header that breaks the protocol throws "protocol error: ...".
    func next() throws(TransportError) -> RawFrame {
        let header = try nextHeader()
        let fixed = try input.take(header.type.fixedPayloadSize)
        let dataCount = Int(header.length) - header.type.fixedPayloadSize
        afterSplicedData = false
        guard let splicing, header.type == .resyncReply || header.type == .data, dataCount >= SplicedReceive.smallestSpliced else {
            return RawFrame(header: header, fixed: fixed, data: try input.take(dataCount))
        }
        // What the buffer already holds of the data comes first; the rest is spliced.
        let prefix = try input.take(min(input.buffered, dataCount))
        guard let spliced = try splicing.receiveSpliced(dataCount, prefix: prefix) else {
            // No pipes to be had: into memory.
            return RawFrame(header: header, fixed: fixed, data: prefix + (try input.take(dataCount - prefix.count)))
        }
        afterSplicedData = true
        return RawFrame(header: header, fixed: fixed, data: [], held: spliced)
    }

    private func nextHeader() throws(TransportError) -> FrameHeader {
        do {
            if afterSplicedData && input.buffered < FrameHeader.size {
                return try FrameHeader(bytes: input.take(FrameHeader.size))
            }
            try input.fill(atLeast: FrameHeader.size)
            let header = try bufferedHeader()
            input.consume(FrameHeader.size)
            return header
        } catch let error as ProtocolError {
            throw TransportError("protocol error: \(error)")
        } catch let error as TransportError {
            guard error.isClosedByPeer, input.buffered > 0 else { throw error }
            // Closed within a header: not a clean end. A TLS record's start (content type
            // 20...23, version 3.x) says why.
            let start = input.peek(2) { Array($0) }
            let tls = start.count == 2 && (0x14...0x17).contains(start[0]) && start[1] == 0x03
            throw TransportError("protocol error: the peer closed the connection after \(input.buffered) bytes of a frame header"
                                 + (tls ? ": a TLS record, the peer has `tls yes` and this node has not (no fallback to plain text)" : ""))
        } catch {
            throw TransportError("\(error)")
        }
    }

    private func bufferedHeader() throws(ProtocolError) -> FrameHeader {
        try FrameHeader(bytes: input.peek(FrameHeader.size) { Array($0) })
    }
}
