#if canImport(Glibc)
import Glibc
#endif
import CReplicaLinux
import Synchronization

/// A frame's data received from a socket by `splice` into a chain of pipes: the pipes hold
/// references to the socket buffer's pages, not a copy, until the runtime writes them into
/// the disk (``write(to:at:)``, one copy, as a `pwrite` does) — a resync block then reaches
/// the disk with one copy instead of two (receive, write). The engine sees the frame before
/// the bytes land, as it must: it decides whether and where they are written.
///
/// The bytes come in up to three parts, in order: those the reader had already received into
/// its buffer with the frame's header (`prefix`), those spliced into pipes, and — when the
/// peer's stream arrived in fragments too small for the chain of pipes — the rest received
/// into memory (`suffix`). Its bytes are taken once.
public final class SplicedReceive: HeldDataStorage {
    /// Number of bytes held.
    public let count: Int
    private let prefix: [UInt8]
    private let pipes: [(pipe: ReceivePipes.Pipe, bytes: Int)]
    private let suffix: [UInt8]
    /// Bytes received into memory rather than pipes (what the reader had buffered, and what
    /// did not fit the chain).
    var bytesInMemory: Int { prefix.count + suffix.count }
    /// How many of `pipes` were emptied (they go back to the pool when the value goes).
    private let emptied = Atomic<Int>(0)
    private let taken = Atomic(false)

    /// Payloads of at least this many bytes are worth splicing (smaller ones cost more in
    /// calls than the copy saves).
    public static let smallestSpliced = 256 << 10
    /// Pipes one payload may use: the stream's fragments fill a pipe's slots, not its bytes.
    public static let longestChain = 8
    private static let spliced = Atomic<Int>(0)

    /// Payloads received by `splice` in this process so far (for statistics and tests).
    public static var receivesSpliced: Int { spliced.load(ordering: .relaxed) }

    private init(count: Int, prefix: [UInt8], pipes: [(pipe: ReceivePipes.Pipe, bytes: Int)], suffix: [UInt8]) {
        self.count = count
        self.prefix = prefix
        self.pipes = pipes
        self.suffix = suffix
    }

    deinit {
        let empty = emptied.load(ordering: .acquiring)
        for (index, held) in pipes.enumerated() {
            if index < empty { ReceivePipes.giveBack(held.pipe) } else { ReceivePipes.discard(held.pipe) }
        }
    }

    /// Receives `count` bytes of a frame's data: `prefix` (already received), then from
    /// `socket` (a connected, blocking stream socket) into pipes, then — when the chain is
    /// full — into memory with `receiveRest`. Nil, with nothing received, when no pipes are
    /// to be had (the system refuses them, or too many are held): the caller receives into
    /// memory instead.
    /// - Throws: ``TransportError`` when the socket fails or the peer ends the stream.
    /// `longestChain`: most pipes to use (fewer only to test the way to memory).
    public static func receive(_ count: Int, prefix: [UInt8], from socket: Int32, longestChain: Int = longestChain,
                               receiveRest: (UnsafeMutableRawBufferPointer) throws(TransportError) -> Void) throws(TransportError) -> SplicedReceive? {
        precondition(prefix.count <= count, "more bytes than the frame's data")
        guard let first = ReceivePipes.take() else { return nil }
        var current: ReceivePipes.Pipe? = first
        var pipes: [(pipe: ReceivePipes.Pipe, bytes: Int)] = []
        var inCurrent = 0
        var left = count - prefix.count
        // Until `receive` returns, the pipes are this function's: a failure discards them.
        var done = false
        defer {
            if !done {
                if let current { ReceivePipes.discard(current) }
                for held in pipes { ReceivePipes.discard(held.pipe) }
            }
        }
        while left > 0, let pipe = current {
            let n = CReplicaLinux_splice_socket_to_pipe(socket, pipe.write, left)
            if n > 0 {
                inCurrent += Int(n)
                left -= Int(n)
                continue
            }
            if n == 0 { throw TransportError(TransportError.closedByPeer) }
            guard n == -Int64(EAGAIN), inCurrent > 0 else {
                throw TransportError("splice from the socket after \(count - left) of \(count) bytes: \(String(cString: strerror(Int32(-n))))")
            }
            // The pipe's slots are full: the next one, unless the chain is as long as it may be
            // (the rest then goes to memory).
            pipes.append((pipe, inCurrent))
            inCurrent = 0
            current = pipes.count < longestChain ? ReceivePipes.take() : nil
        }
        if let pipe = current {
            if inCurrent > 0 { pipes.append((pipe, inCurrent)) } else { ReceivePipes.giveBack(pipe) }
            current = nil
        }
        let suffix = left > 0 ? try [UInt8](filling: left, by: receiveRest) : []
        done = true
        spliced.add(1, ordering: .relaxed)
        return SplicedReceive(count: count, prefix: prefix, pipes: pipes, suffix: suffix)
    }

    public func takeBytes() throws(BlockIOError) -> [UInt8] {
        try takeOnce(.read, 0)
        return try [UInt8](filling: count) { [self] raw throws(BlockIOError) in
            prefix.withUnsafeBytes { if $0.count > 0 { raw.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            var done = prefix.count
            for (index, held) in pipes.enumerated() {
                var left = held.bytes
                while left > 0 {
                    let n = Glibc.read(held.pipe.read, raw.baseAddress! + done, left)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else {
                        throw BlockIOError(operation: .read, offset: 0, length: Int64(count), errno: n < 0 ? errno : EIO,
                                           detail: "reading received data out of its pipe (\(done) of \(count) bytes)")
                    }
                    done += n
                    left -= n
                }
                emptied.store(index + 1, ordering: .releasing)
            }
            suffix.withUnsafeBytes { if $0.count > 0 { (raw.baseAddress! + done).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        }
    }

    public func write(to file: Int32, at offset: Int64) throws(BlockIOError) -> Bool {
        try takeOnce(.write, offset)
        var position = offset
        try Self.writeFully(prefix, to: file, at: &position, of: offset, count)
        for (index, held) in pipes.enumerated() {
            var left = held.bytes
            while left > 0 {
                let n = CReplicaLinux_splice_pipe_to_file(held.pipe.read, file, position, left)
                guard n > 0 else {
                    throw BlockIOError(operation: .write, offset: offset, length: Int64(count), errno: n < 0 ? Int32(-n) : EIO,
                                       detail: "splicing received data into the disk (\(position - offset) of \(count) bytes)")
                }
                position += Int64(n)
                left -= Int(n)
            }
            emptied.store(index + 1, ordering: .releasing)
        }
        try Self.writeFully(suffix, to: file, at: &position, of: offset, count)
        return true
    }

    private func takeOnce(_ operation: BlockIOError.Operation, _ offset: Int64) throws(BlockIOError) {
        guard !taken.exchange(true, ordering: .acquiringAndReleasing) else {
            throw BlockIOError(operation: operation, offset: offset, length: Int64(count), errno: EINVAL, detail: "received data taken twice")
        }
    }

    private static func writeFully(_ bytes: [UInt8], to file: Int32, at position: inout Int64, of offset: Int64, _ count: Int) throws(BlockIOError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.pwrite(file, $0.baseAddress! + done, $0.count - done, off_t(position)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw BlockIOError(operation: .write, offset: offset, length: Int64(count), errno: n < 0 ? errno : EIO,
                                   detail: "writing received data (\(position - offset) of \(count) bytes)")
            }
            done += n
            position += Int64(n)
        }
    }
}

/// The pipes that ``SplicedReceive`` receives into: 1 MiB each, kept for reuse when emptied,
/// and limited in number (each pins up to its capacity of socket buffer pages).
enum ReceivePipes {
    /// A pipe's two ends.
    struct Pipe: Sendable {
        let read: Int32
        let write: Int32
    }

    static let capacity = 1 << 20
    /// Most pipes alive at once; a receive beyond them goes to memory.
    static let limit = 64
    /// Most emptied pipes kept for reuse.
    static let idleLimit = 16
    private static let pool = Mutex<(idle: [Pipe], alive: Int)>(([], 0))

    /// An empty pipe: an idle one, or a new one; nil at the limit or when the system refuses.
    static func take() -> Pipe? {
        let reused: Pipe?? = pool.withLock { state in
            if let pipe = state.idle.popLast() { return .some(pipe) }
            guard state.alive < limit else { return .some(nil) }
            state.alive += 1
            return nil
        }
        if let reused { return reused }
        var descriptors: [Int32] = [-1, -1]
        guard CReplicaLinux_pipe_with_capacity(&descriptors, Int32(capacity)) == 0 else {
            pool.withLock { $0.alive -= 1 }
            return nil
        }
        return Pipe(read: descriptors[0], write: descriptors[1])
    }

    /// Returns an emptied pipe for reuse.
    static func giveBack(_ pipe: Pipe) {
        let kept = pool.withLock { state -> Bool in
            guard state.idle.count < idleLimit else { return false }
            state.idle.append(pipe)
            return true
        }
        if !kept { discard(pipe) }
    }

    /// Pipes alive now (in use or idle).
    static var alive: Int { pool.withLock { $0.alive } }

    /// Closes a pipe (one that may still hold bytes).
    static func discard(_ pipe: Pipe) {
        close(pipe.read)
        close(pipe.write)
        pool.withLock { $0.alive -= 1 }
    }
}
