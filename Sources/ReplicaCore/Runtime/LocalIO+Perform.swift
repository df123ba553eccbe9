extension LocalIO {
    /// Performs this operation on `disk` (blocking) and returns the result the engine expects;
    /// `held`: the data of a ``writeHeld(offset:data:)``, resolved by the ``EngineDriver``.
    public func perform(on disk: any BlockTarget, held: (any HeldDataStorage)? = nil) -> LocalIOResult {
        do throws(BlockIOError) {
            switch self {
            case .read(let offset, let length), .readForPeer(let offset, let length): return .success(try disk.read(count: length, at: offset))
            case .write(let offset, let data): try disk.write(data, at: offset)
            case .writeHeld(let offset, let data):
                guard let held else {
                    throw BlockIOError(operation: .write, offset: offset, length: Int64(data.count), errno: 22, detail: "\(data) was not handed over")
                }
                // Written from where it is held when the disk's file takes it so; else as a write.
                if let file = disk.pageCacheDescriptor, offset >= 0, offset + Int64(data.count) <= disk.size,
                   try held.write(to: file, at: offset) { break }
                try disk.write(try held.takeBytes(), at: offset)
            case .flush: try disk.flush()
            case .discard(let offset, let length):
                // Zeroes, not a hint: both nodes must read the same bytes afterwards (a device's
                // discard may keep the old data, a file system may not punch holes), and NBD's
                // WRITE_ZEROES arrives as a discard. Files punch a hole; devices zero out.
                try disk.writeZeroes(at: offset, length: length)
            }
            return .success([])
        } catch {
            return .failure(error)
        }
    }
}

/// How a local I/O ended, as the runtime hands it to the ``EngineDriver``.
public enum LocalIOCompletion: Sendable {
    /// Done (reads carry their data), or failed.
    case result(LocalIOResult)
    /// A read for the peer whose data was kept out of memory (``SplicedRead``).
    case heldRead(any HeldDataStorage)
}

extension LocalIO {
    /// Performs this operation on `disk` (blocking): a read for the peer is kept in the page
    /// cache (``SplicedRead``) where `disk` has one and the system allows; everything else is
    /// done as ``perform(on:held:)`` does.
    public func complete(on disk: any BlockTarget, held: (any HeldDataStorage)?) -> LocalIOCompletion {
        if case .readForPeer(let offset, let length) = self, let file = disk.pageCacheDescriptor,
           let spliced = SplicedRead.read(file, offset: offset, length: length) {
            return .heldRead(spliced)
        }
        return .result(perform(on: disk, held: held))
    }
}

extension EngineDriver {
    /// Hands the engine how local I/O `id` ended.
    public mutating func completed(_ id: LocalIOID, _ completion: LocalIOCompletion) {
        switch completion {
        case .result(let result): completed(id, result)
        case .heldRead(let storage): completedHeldRead(id, storage)
        }
    }
}
