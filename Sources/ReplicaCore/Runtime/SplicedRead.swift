#if canImport(Glibc)
import Glibc
#endif
import CReplicaLinux
import Synchronization

/// Data read from a disk by `splice` into a pipe: the pipe holds references to the page
/// cache's pages, not a copy, and a transport over a socket splices them on to it — a resync
/// block then crosses this node without being copied (``HeldData``). Each read has its own
/// pipe, closed when the value goes; its bytes are taken once.
///
/// The pages are referenced, not copied: a write to the same blocks after the read shows in
/// the data sent. The engine allows for it (``LocalIO/readForPeer(offset:length:)``): such a
/// write is sent after the block and overwrites it on the peer.
public final class SplicedRead: HeldDataStorage {
    /// Number of bytes held.
    public let count: Int
    private let readEnd: Int32
    private let writeEnd: Int32

    /// Most spliced reads alive at once (two descriptors each); reads beyond go to memory.
    static let limit = 256
    private static let alive = Atomic<Int>(0)
    private static let spliced = Atomic<Int>(0)

    /// Reads spliced in this process so far (for statistics and tests).
    public static var readsSpliced: Int { spliced.load(ordering: .relaxed) }

    private init(count: Int, readEnd: Int32, writeEnd: Int32) {
        self.count = count
        self.readEnd = readEnd
        self.writeEnd = writeEnd
    }

    deinit {
        close(readEnd)
        close(writeEnd)
        Self.alive.subtract(1, ordering: .relaxed)
    }

    /// Splices `length` bytes of `file` at `offset` into a new pipe. Nil when that cannot be
    /// done (a file system without splice, too many reads held, a short read at the end of
    /// the file, any error): the caller reads into memory instead, which reports a disk's
    /// error as a read error.
    public static func read(_ file: Int32, offset: Int64, length: Int) -> SplicedRead? {
        guard length > 0, offset >= 0 else { return nil }
        guard alive.add(1, ordering: .relaxed).newValue <= limit else {
            alive.subtract(1, ordering: .relaxed)
            return nil
        }
        // One pipe slot per page: an unaligned range touches one page more.
        let page = 4096
        let aligned = offset % Int64(page) == 0 && length % page == 0
        var descriptors: [Int32] = [-1, -1]
        guard CReplicaLinux_pipe_with_capacity(&descriptors, Int32(aligned ? length : length + page)) == 0 else {
            alive.subtract(1, ordering: .relaxed)
            return nil
        }
        // From here the value owns the pipe (and the count): dropping it closes both.
        let held = SplicedRead(count: length, readEnd: descriptors[0], writeEnd: descriptors[1])
        var moved = 0
        while moved < length {
            let n = CReplicaLinux_splice_file_to_pipe(file, offset + Int64(moved), held.writeEnd, length - moved)
            guard n > 0 else { return nil }
            moved += Int(n)
        }
        spliced.add(1, ordering: .relaxed)
        return held
    }

    public func takeBytes() throws(BlockIOError) -> [UInt8] {
        try [UInt8](filling: count) { buffer throws(BlockIOError) in
            var done = 0
            while done < count {
                let n = Glibc.read(readEnd, buffer.baseAddress! + done, count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw BlockIOError(operation: .read, offset: 0, length: Int64(count), errno: n < 0 ? errno : EIO,
                                       detail: "reading a spliced block out of its pipe (\(done) of \(count) bytes)")
                }
                done += n
            }
        }
    }

    /// Moves the held bytes to `socket` (a connected stream socket), waiting as long as the
    /// socket does; `more`: data follows at once (the kernel may hold back a partial packet).
    /// - Throws: ``TransportError`` with the system's error.
    public func send(to socket: Int32, more: Bool) throws(TransportError) {
        var moved = 0
        while moved < count {
            let n = CReplicaLinux_splice_pipe_to_socket(readEnd, socket, count - moved, more ? 1 : 0)
            guard n > 0 else {
                let reason = n == 0 ? "the pipe ran dry" : String(cString: strerror(Int32(-n)))
                throw TransportError("splice to the socket after \(moved) of \(count) bytes: \(reason)")
            }
            moved += Int(n)
        }
    }
}
