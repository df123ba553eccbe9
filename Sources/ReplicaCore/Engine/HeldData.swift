/// Bytes the runtime keeps out of the process's memory, so that a resync block is not copied
/// into memory and out again: read from a disk for the peer — on Linux as the page cache's own
/// pages in a pipe (``SplicedRead``) — until the transport sends them, or received from the
/// peer — as the socket buffer's pages in pipes (``SplicedReceive``) — until the runtime writes
/// them to the disk. The engine passes it on unopened. Two values are equal when they hold the
/// same storage.
public struct HeldData: Sendable, Equatable, CustomStringConvertible {
    /// Where the bytes are.
    public let storage: any HeldDataStorage

    /// Wraps `storage`.
    public init(_ storage: any HeldDataStorage) { self.storage = storage }

    /// Number of bytes held.
    public var count: Int { storage.count }

    public static func == (lhs: HeldData, rhs: HeldData) -> Bool { lhs.storage === rhs.storage }

    public var description: String { "\(count) held bytes" }
}

/// The storage behind ``HeldData``. Its bytes are taken once: sent by a transport that can
/// send them from where they are, or copied into memory with ``takeBytes()``.
public protocol HeldDataStorage: AnyObject, Sendable {
    /// Number of bytes held.
    var count: Int { get }
    /// The bytes, copied into memory (for a transport that cannot send them from where they
    /// are); the storage is empty afterwards.
    /// - Throws: ``BlockIOError`` naming the operation that failed.
    func takeBytes() throws(BlockIOError) -> [UInt8]
    /// Writes the bytes into `file` (a descriptor of a disk that uses the page cache) at
    /// `offset` from where they are held, without taking them into memory; the storage is
    /// empty afterwards. False, with nothing done, for storage that cannot (the caller then
    /// takes the bytes and writes them as usual).
    /// - Throws: ``BlockIOError`` naming the operation that failed.
    func write(to file: Int32, at offset: Int64) throws(BlockIOError) -> Bool
}

extension HeldDataStorage {
    /// Storage that can only be taken into memory.
    public func write(to file: Int32, at offset: Int64) throws(BlockIOError) -> Bool { false }
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

/// Held bytes kept in memory, taken once: what in-memory runtimes and the simulator hand the
/// engine for a block received apart from its frame.
public final class HeldBytesInMemory: HeldDataStorage, @unchecked Sendable {
    // Taken once, by the one runtime thread that writes or sends it.
    private var bytes: [UInt8]?
    /// Number of bytes held.
    public let count: Int

    /// Holds `bytes`.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        count = bytes.count
    }

    public func takeBytes() throws(BlockIOError) -> [UInt8] {
        guard let taken = bytes else {
            throw BlockIOError(operation: .read, offset: 0, length: Int64(count), errno: 22, detail: "held bytes taken twice")
        }
        bytes = nil
        return taken
    }
}
