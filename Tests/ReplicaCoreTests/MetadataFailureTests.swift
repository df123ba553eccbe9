import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// A meta-data write that fails is an event for the engine (EngineDriver): what depended on it
/// does not happen, and the disk is let go as DRBD does on a meta-data I/O error.
@Suite("Meta-data write failures")
struct MetadataFailureTests {
    func pair(_ configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> InMemoryCluster {
        var configuration = EngineConfiguration()
        configure(&configuration)
        return try InMemoryCluster.primaryPair(configuration: configuration, seed: 5)
    }

    func block(_ value: UInt8, _ count: Int = 4096) -> [UInt8] { [UInt8](repeating: value, count: count) }

    func result(_ pair: InMemoryCluster, _ node: Int, _ id: RequestID) -> Result<[UInt8], RequestError>? {
        pair.nodes[node].completions.last { $0.0 == id }?.1
    }

    /// The activity-log area of node `node`'s meta-data.
    func activityLogArea(_ pair: InMemoryCluster, _ node: Int) -> Range<Int64> {
        let layout = pair.nodes[node].metadata.layout
        return layout.activityLogOffset..<(layout.activityLogOffset + Int64(layout.activityLogBlocks) * 4096)
    }

    func bitmapArea(_ pair: InMemoryCluster, _ node: Int) -> Range<Int64> {
        let layout = pair.nodes[node].metadata.layout
        return layout.bitmapOffset..<(layout.bitmapOffset + layout.bitmapBytes)
    }

    @Test func aWriteWhoseActivityLogTransactionFailedNeverReachesTheLocalDiskAndCompletesThroughThePeer() throws {
        var pair = try pair()
        pair.nodes[0].metadataTarget.inject(.failWrite(number: 1, in: activityLogArea(pair, 0)))
        try pair.request(0, 1, .write(offset: 6 << 20, data: block(7)))
        try pair.run()
        // The AL transaction failed: the local write was never started, the disk let go…
        #expect(pair.nodes[0].metadataTarget.writesFailed == 1)
        #expect(pair.nodes[0].engine.state.disk == .diskless)
        let detached = pair.nodes[0].diskDetached
        #expect(detached)
        #expect(try pair.nodes[0].disk.read(count: 4096, at: 6 << 20) == block(0), "the write reached the disk whose AL transaction failed")
        // …and the write completed on the peer's disk (protocol C), which serves it now.
        guard case .success? = result(pair, 0, 1) else { Issue.record("\(String(describing: result(pair, 0, 1)))"); return }
        #expect(try pair.nodes[1].disk.read(count: 4096, at: 6 << 20) == block(7))
        try pair.request(0, 2, .read(offset: 6 << 20, length: 4096))
        try pair.run()
        #expect(try result(pair, 0, 2)?.get() == block(7))
        #expect(pair.nodes[0].log.contains { $0.contains("meta-data I/O error") })
    }

    @Test func withoutAPeerTheWriteWhoseActivityLogTransactionFailedFails() throws {
        var pair = try pair()
        try pair.disconnect()
        try pair.run()
        pair.nodes[0].metadataTarget.inject(.failWrite(number: 1, in: activityLogArea(pair, 0)))
        try pair.request(0, 1, .write(offset: 4 << 20, data: block(9)))
        try pair.run()
        guard case .failure? = result(pair, 0, 1) else { Issue.record("\(String(describing: result(pair, 0, 1)))"); return }
        #expect(pair.nodes[0].engine.state.disk == .diskless)
        #expect(try pair.nodes[0].disk.read(count: 4096, at: 4 << 20) == block(0), "a failed write reached the disk")
    }

    /// Every bitmap page write fails: the pages stay unsaved, the disk is let go, and its
    /// superblock says "full sync" — so when it works again and is attached, every block is
    /// resynced and none written while the peer was away is lost.
    @Test func failedBitmapSavesLeaveTheDiskMarkedForAFullSyncAndNoBlockIsLost() throws {
        var large = try InMemoryCluster.primaryPair(diskSize: 1 << 30, configuration: {
            var configuration = EngineConfiguration()
            configuration.activityLogExtents = 67
            return configuration
        }(), seed: 5)
        try large.disconnect()
        try large.run()
        large.nodes[0].metadataTarget.inject(.failWrites(in: bitmapArea(large, 0)))
        var blocks: [(offset: Int64, value: UInt8)] = []
        for index in 0..<100 {
            let offset = (Int64(index) << 22) % (1 << 30) + Int64(index % 4) * 4096
            blocks.append((offset, UInt8(truncatingIfNeeded: index + 1)))
            try large.request(0, RequestID(10 + index), .write(offset: offset, data: block(UInt8(truncatingIfNeeded: index + 1))))
            try large.run()
            if large.nodes[0].engine.state.disk == .diskless { break }
        }
        #expect(large.nodes[0].engine.state.disk == .diskless, "the failing bitmap saves did not let the disk go")
        let superblock = try large.nodes[0].metadata.readSuperblock()
        #expect(superblock.flags.contains(.fullSync), "the superblock does not ask for a full sync: \(superblock.flags)")
        // What was written before the disk went is on it (acknowledged locally).
        let acknowledged = blocks.filter { entry in
            guard let index = blocks.firstIndex(where: { $0.offset == entry.offset }) else { return false }
            if case .success? = result(large, 0, RequestID(10 + index)) { return true }
            return false
        }
        #expect(acknowledged.count >= 67)
        // The disk works again: the Primary steps down, attaches and connects; a full sync
        // brings the peer every block.
        large.nodes[0].metadataTarget.clearFaults()
        #expect(try large.admin(0) { $0.demote() } == nil)
        try large.reattach(0)
        try large.run()
        let states = (large.nodes[0].engine.state, large.nodes[1].engine.state)
        #expect(states.0.connection == .connected && states.0.disk == .upToDate && states.1.disk == .upToDate, "\(states)")
        for entry in acknowledged {
            #expect(try large.nodes[1].disk.read(count: 4096, at: entry.offset) == block(entry.value), "block at \(entry.offset) lost")
        }
    }

    @Test(arguments: [OnIOError.passOn, .detach, .callLocalIOError])
    func aFailedSuperblockWriteLetsTheDiskGoWhateverOnIOErrorSays(policy: OnIOError) throws {
        var pair = try pair { $0.onIOError = policy }
        try pair.disconnect()
        try pair.run()
        #expect(try pair.admin(0) { $0.demote() } == nil)
        try pair.run()
        pair.nodes[0].metadataTarget.inject(.failFlushes)
        // A promotion apart starts a new generation: its superblock write (with md-flushes) fails.
        #expect(try pair.admin(0) { $0.promote(force: false) } == nil)
        try pair.run()
        #expect(pair.nodes[0].engine.state.disk == .diskless, "\(policy): \(pair.nodes[0].engine.state)")
        #expect(pair.nodes[0].log.contains("handler: local-io-error") == (policy == .callLocalIOError))
    }

    @Test func aTornActivityLogTransactionIsCaughtByItsChecksumWhenReplayed() throws {
        var pair = try pair()
        pair.nodes[0].metadataTarget.inject(.tearWrite(in: activityLogArea(pair, 0)))
        try pair.request(0, 1, .write(offset: 2 << 20, data: block(3)))
        try pair.run()
        #expect(pair.nodes[0].engine.state.disk == .diskless)
        let superblock = try pair.nodes[0].metadata.readSuperblock()
        let replay = ActivityLogReplay(blocks: try pair.nodes[0].metadata.readActivityLogBlocks(superblock), slots: Int(superblock.activityLogExtents))
        #expect(replay.damagedBlocks.count == 1, "the torn transaction: \(replay.damagedBlocks)")
    }
}
