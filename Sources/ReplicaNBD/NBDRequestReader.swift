import ReplicaCore
import ReplicaTransportTCP

/// Reads a client's requests through a ``StreamReceiveBuffer``, so that the requests a client
/// sent together (many, at a high queue depth) arrive with one `recv` instead of two per
/// request. A payload larger than what is buffered is received straight into its own array.
final class NBDRequestReader {
    private let input: StreamReceiveBuffer<NBDSocket.Closed>

    /// Bytes read at most per `recv`.
    static let capacity = 64 << 10

    init(socket: NBDSocket) {
        input = StreamReceiveBuffer(capacity: Self.capacity) { buffer throws(NBDSocket.Closed) in try socket.receive(into: buffer) }
    }

    /// Bytes received and not consumed yet.
    var buffered: Int { input.buffered }

    /// The next request header; waits only when fewer than its 28 bytes are buffered.
    func header() throws -> NBDRequestHeader {
        try input.fill(atLeast: NBDRequestHeader.size)
        let header = try input.peek(NBDRequestHeader.size) { bytes in Result { try NBDRequestHeader(bytes: bytes) } }.get()
        input.consume(NBDRequestHeader.size)
        return header
    }

    /// The next `count` bytes: the buffered part copied, the rest received into the array.
    func payload(_ count: Int) throws(NBDSocket.Closed) -> [UInt8] {
        try input.take(count)
    }
}
