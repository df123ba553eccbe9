/// Where the bytes behind a ``HeldData`` handle are: a pipe holding page-cache pages
/// (``SplicedRead``), pipes holding socket-buffer pages (``SplicedReceive``), or memory
/// (``HeldBytesInMemory``). Its bytes are taken once: sent by a transport that can send them
/// from where they are, written into a disk's file, or copied into memory with ``takeBytes()``.
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

/// The storage behind the ``HeldData`` handles of one volume's engine: a runtime holds the
/// storage here when it hands the engine a handle, takes it back when the engine asks for it
/// to be sent or written, and releases (after every engine step) what the engine no longer
/// refers to. Used inside engine steps only.
public struct HeldDataStore {
    private var storage: [UInt64: any HeldDataStorage] = [:]
    private var nextID: UInt64 = 1

    /// An empty store.
    public init() {}

    /// Keeps `bytes` and returns the handle the engine gets for them.
    public mutating func hold(_ bytes: any HeldDataStorage) -> HeldData {
        let handle = HeldData(id: nextID, count: bytes.count)
        nextID &+= 1
        storage[handle.id] = bytes
        return handle
    }

    /// The storage of `handle`, no longer kept here (the caller sends or writes it).
    /// - Throws: ``BlockIOError`` when the store does not hold it (released, or taken before).
    public mutating func take(_ handle: HeldData) throws(BlockIOError) -> any HeldDataStorage {
        guard let bytes = storage.removeValue(forKey: handle.id) else {
            throw BlockIOError(operation: .read, offset: 0, length: Int64(handle.count), errno: 22,
                               detail: "\(handle) is not held (taken twice, or released)")
        }
        return bytes
    }

    /// Releases every storage whose handle is not in `inUse` (closing its pipes).
    public mutating func release(keeping inUse: Set<UInt64>) {
        guard !storage.isEmpty else { return }
        storage = storage.filter { inUse.contains($0.key) }
    }

    /// Number of storages held.
    public var count: Int { storage.count }
}
