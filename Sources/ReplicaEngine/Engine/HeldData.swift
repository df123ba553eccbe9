/// Bytes the runtime keeps out of the process's memory, named by a handle: a resync block read
/// from a disk for the peer (on Linux the page cache's own pages in a pipe) until the
/// transport sends it, or a block received from the peer (the socket buffer's pages in pipes)
/// until the runtime writes it to the disk. The engine passes the handle on unopened, in
/// ``EngineEffect/sendHeld(_:_:)`` or ``LocalIO/writeHeld(offset:data:)``; the runtime
/// resolves it where it holds the bytes, and releases what the engine no longer refers to
/// (``VolumeEngine/heldDataInUse``). A value: copying it copies the handle, never the bytes.
public struct HeldData: Sendable, Hashable, CustomStringConvertible {
    /// The runtime's number for the bytes, unique among those it holds.
    public let id: UInt64
    /// Number of bytes held.
    public let count: Int

    /// The handle `id` for `count` bytes.
    public init(id: UInt64, count: Int) {
        self.id = id
        self.count = count
    }

    public var description: String { "\(count) held bytes (#\(id))" }
}

extension Frame {
    /// This frame with `bytes` as its data (for the frames that carry data: data, data reply,
    /// resync reply); other frames are returned unchanged.
    public func replacingData(_ bytes: [UInt8]) -> Frame {
        switch self {
        case .data(let header, _): .data(header, bytes)
        case .dataReply(let offset, let blockID, _): .dataReply(offset: offset, blockID: blockID, bytes)
        case .resyncReply(let offset, let blockID, _): .resyncReply(offset: offset, blockID: blockID, bytes)
        default: self
        }
    }
}

extension VolumeEngine {
    /// The held data the engine still refers to: frames held back behind a barrier, and
    /// writes of held data waiting for an overlapping I/O to finish. Whatever else the runtime
    /// handed the engine and has not been asked to send or write is no longer wanted (a frame
    /// of an ended connection, a block for a disk let go) and may be released.
    public var heldDataInUse: Set<UInt64> {
        var ids = Set<UInt64>()
        for (_, data) in receiver.held { if let data { ids.insert(data.id) } }
        for io in ordering.waitingIO { if case .writeHeld(_, let data) = io { ids.insert(data.id) } }
        return ids
    }
}
