import ReplicaCore

/// Reads frames from one connection through a ``StreamReceiveBuffer``: the frames that arrived
/// together (a batch of writes, a burst of acks) come with one `recv`.
final class BufferedFrameReader {
    private let input: StreamReceiveBuffer<TransportError>

    /// Bytes read at most per `recv` (a frame's data beyond them is received in place).
    static let capacity = 64 << 10

    /// The parts of one frame as they came off the wire (the header checked for its bounds).
    struct RawFrame {
        var header: FrameHeader
        var fixed: [UInt8]
        var data: [UInt8]
    }

    init(socket: BlockingSocket) {
        input = StreamReceiveBuffer(capacity: Self.capacity) { buffer throws(TransportError) in try socket.receive(into: buffer) }
    }

    /// True when the next frame is buffered whole: ``next()`` will not wait for it.
    var nextFrameIsBuffered: Bool {
        guard input.buffered >= FrameHeader.size, let header = try? bufferedHeader() else { return false }
        return input.buffered >= FrameHeader.size + Int(header.length)
    }

    /// The next frame; a header that breaks the protocol throws "protocol error: ...".
    func next() throws(TransportError) -> RawFrame {
        try input.fill(atLeast: FrameHeader.size)
        let header: FrameHeader
        do {
            header = try bufferedHeader()
        } catch {
            throw TransportError("protocol error: \(error)")
        }
        input.consume(FrameHeader.size)
        let fixed = try input.take(header.type.fixedPayloadSize)
        let data = try input.take(Int(header.length) - header.type.fixedPayloadSize)
        return RawFrame(header: header, fixed: fixed, data: data)
    }

    private func bufferedHeader() throws(ProtocolError) -> FrameHeader {
        try FrameHeader(bytes: input.peek(FrameHeader.size) { Array($0) })
    }
}
