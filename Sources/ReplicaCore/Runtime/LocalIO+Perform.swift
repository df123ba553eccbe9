extension LocalIO {
    /// Performs this operation on `disk` (blocking) and returns the result the engine expects.
    public func perform(on disk: any BlockTarget) -> LocalIOResult {
        do {
            switch self {
            case .read(let offset, let length), .readForPeer(let offset, let length): return .success(try disk.read(count: length, at: offset))
            case .write(let offset, let data): try disk.write(data, at: offset)
            case .writeHeld(let offset, let data):
                // Written from where it is held when the disk's file takes it so; else as a write.
                if let file = disk.pageCacheDescriptor, offset >= 0, offset + Int64(data.count) <= disk.size,
                   try data.storage.write(to: file, at: offset) { break }
                try disk.write(try data.storage.takeBytes(), at: offset)
            case .flush: try disk.flush()
            case .discard(let offset, let length): try disk.discard(at: offset, length: length)
            }
            return .success([])
        } catch {
            return .failure(error)
        }
    }
}

extension LocalIO {
    /// Performs this operation on `disk` (blocking) and returns the engine's event for it: a
    /// read for the peer is kept in the page cache (``SplicedRead``) where `disk` has one and
    /// the system allows; everything else is done as ``perform(on:)`` does.
    public func completion(_ id: LocalIOID, on disk: any BlockTarget) -> EngineEvent {
        if case .readForPeer(let offset, let length) = self, let file = disk.pageCacheDescriptor,
           let held = SplicedRead.read(file, offset: offset, length: length) {
            return .heldReadCompleted(id, HeldData(held))
        }
        return .localIOCompleted(id, perform(on: disk))
    }
}
