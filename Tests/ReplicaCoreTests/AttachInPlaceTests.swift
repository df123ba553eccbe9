import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// `attach` of a Diskless Primary on its live connection: the Primary keeps serving while its
/// disk is resynced from the peer (a Primary SyncTarget), on the in-memory runtime.
@Suite("Attach of a Diskless Primary")
struct AttachInPlaceTests {
    func block(_ value: UInt8, _ count: Int = 8192) -> [UInt8] { [UInt8](repeating: value, count: count) }

    func succeeded(_ pair: InMemoryCluster, _ node: Int, _ id: RequestID) -> [UInt8]? {
        pair.nodes[node].completions.last { $0.0 == id }.flatMap { try? $0.1.get() }
    }

    /// Node 0 Primary, written, then detached and written through its peer: its disk misses
    /// the blocks at 1 MiB and 3 MiB.
    func detachedPrimaryBehind(protocolName: String = "C") throws -> InMemoryCluster {
        var configuration = EngineConfiguration()
        configuration.wireProtocol = protocolName
        var pair = try InMemoryCluster.primaryPair(configuration: configuration, seed: 11)
        try pair.request(0, 1, .write(offset: 0, data: block(1)))
        try pair.run()
        #expect(try pair.admin(0) { $0.detach() } == nil)
        try pair.run()
        #expect(pair.nodes[0].engine.state.disk == .diskless)
        try pair.request(0, 2, .write(offset: 1 << 20, data: block(2)))
        try pair.request(0, 3, .write(offset: 3 << 20, data: block(3, 1 << 20)))
        try pair.run()
        #expect(succeeded(pair, 0, 2) != nil && succeeded(pair, 0, 3) != nil)
        #expect(try pair.data(0) != pair.data(1))
        return pair
    }

    /// Attaches node 0's disk with node 1's disk I/O held: the resync stays in progress, node 0
    /// a Primary SyncTarget with requests in flight.
    func attachHeldMidResync(_ pair: inout InMemoryCluster) throws {
        pair.setHoldIO(1, true)
        #expect(try pair.attachInPlace(0) == nil)
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .syncTarget)
    }

    @Test func aDisklessPrimaryAttachesAndIsResyncedWhileItServes() throws {
        var pair = try detachedPrimaryBehind()
        #expect(try pair.attachInPlace(0) == nil)
        // Requests while the disk is being resynced: a read of a block the disk misses is
        // served by the peer, writes go to both disks.
        try pair.request(0, 4, .read(offset: 1 << 20, length: 8192))
        try pair.request(0, 5, .write(offset: 2 << 20, data: block(5)))
        try pair.request(0, 6, .write(offset: (3 << 20) + 4096, data: block(6, 4096)))
        try pair.run()
        let states = (pair.nodes[0].engine.state, pair.nodes[1].engine.state)
        #expect(states.0.role == .primary && states.0.connection == .connected && states.0.disk == .upToDate && states.0.peerDisk == .upToDate, "\(states.0)")
        #expect(states.1.disk == .upToDate && states.1.peerDisk == .upToDate, "\(states.1)")
        let readBack = succeeded(pair, 0, 4)
        let readSawNewData = readBack == block(2)
        let finalBytes = Set(try pair.data(1)[(1 << 20)..<((1 << 20) + 8192)])
        #expect(readSawNewData, "the read saw \(readBack.map { Set($0) } ?? []) instead of the data written while Diskless; \(pair.nodes[0].log) \(pair.nodes[0].sentFrames) final \(finalBytes)")
        #expect(succeeded(pair, 0, 5) != nil && succeeded(pair, 0, 6) != nil)
        #expect(try pair.data(0) == pair.data(1))
        #expect(Array(try pair.data(0)[(3 << 20) + 4096 ..< (3 << 20) + 8192]) == block(6, 4096))
        #expect(pair.nodes[0].log.contains { $0.hasPrefix("Resync done as SyncTarget") })
        #expect(pair.nodes[0].engine.bitmap.setCount == 0 && pair.nodes[1].engine.bitmap.setCount == 0)
        #expect(pair.nodes[0].engine.superblock.uuids.current & ~1 == pair.nodes[1].engine.superblock.uuids.current & ~1)
        #expect(pair.nodes[0].engine.superblock.uuids.current & 1 == 1, "the Primary's current UUID carries the role bit")
    }

    @Test func aWriteOverlappingAResyncRequestInFlightLandsAfterItsAnswer() throws {
        // The resync answer for a block carries the peer's data as it was when the peer read it;
        // a write of the same block made here after the request must not be overwritten by it.
        var pair = try detachedPrimaryBehind()
        try attachHeldMidResync(&pair)
        let requested = pair.nodes[0].engine.resync.inFlight.values.map(\.lowerBound).sorted()
        let target = try #require(requested.first, "resync requests wait on the peer's disk")
        try pair.request(0, 7, .write(offset: target, data: block(7, 4096)))
        try pair.run()
        pair.setHoldIO(1, false)
        try pair.run()
        #expect(succeeded(pair, 0, 7) != nil)
        let kept = Array(try pair.data(0)[Int(target) ..< Int(target) + 4096]) == block(7, 4096)
        #expect(kept, "the write at \(target) was overwritten by an older resync answer")
        #expect(try pair.data(0) == pair.data(1))
        #expect(pair.nodes[0].engine.state.disk == .upToDate)
    }

    @Test func aWriteWaitingForAResyncAnswerGoesOnWhenTheDiskGoesAgain() throws {
        // Simulator seed 53958: the waiting write was dropped with the disk, never completed.
        var pair = try detachedPrimaryBehind()
        try attachHeldMidResync(&pair)
        let target = try #require(pair.nodes[0].engine.resync.inFlight.values.map(\.lowerBound).min())
        try pair.request(0, 8, .write(offset: target, data: block(8, 4096)))
        try pair.run()
        #expect(succeeded(pair, 0, 8) == nil, "the write did not wait for the resync answer")
        #expect(try pair.admin(0) { $0.detach() } == nil)
        pair.setHoldIO(1, false)
        try pair.run()
        #expect(pair.nodes[0].engine.state.disk == .diskless)
        #expect(succeeded(pair, 0, 8) != nil, "the waiting write was never completed: \(pair.nodes[0].log.suffix(4))")
        #expect(Array(try pair.data(1)[Int(target) ..< Int(target) + 4096]) == block(8, 4096))
    }

    @Test func theTargetKnowsThePeersSyncUUIDForALaterAttach() throws {
        // Simulator seed 53958: the record of the peer's UUIDs kept the bitmap UUID from before
        // the sync UUID, so an attach after the disk failed during the resync was refused as
        // unrelated data.
        var pair = try detachedPrimaryBehind()
        try attachHeldMidResync(&pair)
        let peer = pair.nodes[1].engine.superblock.uuids
        #expect(pair.nodes[0].engine.handshake.peerUUIDs?.uuids.bitmap == peer.bitmap)
        #expect(pair.nodes[0].engine.handshake.peerUUIDs?.uuids.historyStart == peer.historyStart)
        #expect(try pair.admin(0) { $0.detach() } == nil)
        pair.setHoldIO(1, false)
        try pair.run()
        #expect(try pair.attachInPlace(0) == nil)
        try pair.run()
        #expect(pair.nodes[0].engine.state.disk == .upToDate)
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test func theAttachWorksAfterAnEarlierBitmapExchangeOnTheSameConnection() throws {
        // Regression (simulator, --on-io-error detach): the peer's count of bitmap words received
        // was left from the connection's first handshake, so the bitmap of the attach was
        // refused as out of order ("expected bit 2304") and the connection dropped.
        var pair = try InMemoryCluster(diskSize: 8 << 20, configuration: EngineConfiguration(), seed: 4)
        try pair.preload(node: 0, offset: 0, bytes: block(9, 1 << 20))
        try pair.connect()
        try pair.run()
        #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
        try pair.run()
        #expect(pair.nodes[1].engine.state.disk == .upToDate, "a full sync with a bitmap exchange ran first")
        #expect(try pair.admin(0) { $0.detach() } == nil)
        try pair.request(0, 1, .write(offset: 1 << 20, data: block(1)))
        try pair.run()
        #expect(try pair.attachInPlace(0) == nil)
        try pair.run()
        #expect(!pair.nodes[1].log.contains { $0.contains("protocol error") }, "\(pair.nodes[1].log)")
        #expect(pair.nodes[0].engine.state.disk == .upToDate && pair.nodes[0].engine.state.connection == .connected)
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test func anAttachThePeerNeverAnsweredIsUndoneWhenTheConnectionBreaks() throws {
        // The link breaks while the disk is Negotiating: nothing says which blocks the disk
        // lacks, so it goes again and the Primary stays a Diskless one served by its peer;
        // connected again, it is served as before and a new attach resyncs the disk.
        var pair = try detachedPrimaryBehind()
        let served = pair.nodes[0].engine.effectiveDataUUID
        #expect(try pair.attachInPlace(0) == nil)
        #expect(pair.nodes[0].engine.state.disk == .negotiating)
        try pair.disconnect()
        try pair.run()
        let apart = pair.nodes[0].engine.state
        #expect(apart.role == .primary && apart.disk == .diskless && apart.connection < .connected, "\(apart)")
        #expect(pair.nodes[0].log.contains { $0.hasPrefix("the connection broke before the peer answered the attach") })
        #expect(pair.nodes[0].diskDetached)
        #expect(pair.nodes[0].engine.effectiveDataUUID == served, "the data served stays the peer's")
        try pair.connect()
        try pair.run()
        let again = pair.nodes[0].engine.state
        #expect(again.connection == .connected && again.disk == .diskless && again.peerDisk == .upToDate, "\(again) \(pair.nodes[0].log)")
        try pair.request(0, 7, .read(offset: 1 << 20, length: 8192))
        try pair.run()
        #expect(succeeded(pair, 0, 7) == block(2), "served by the peer, with the data written while Diskless")
        #expect(try pair.attachInPlace(0) == nil)
        try pair.run()
        #expect(pair.nodes[0].engine.state.disk == .upToDate, "\(pair.nodes[0].engine.state)")
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test func aPrimarySyncTargetThatLosesItsPeerIsResyncedWhenItComesBack() throws {
        // The link breaks mid-resync: the Primary's disk is Inconsistent and no UpToDate data is
        // reachable (its I/O fails, as DRBD's does); on reconnect the resync resumes, the
        // Primary still Primary.
        var pair = try detachedPrimaryBehind()
        try attachHeldMidResync(&pair)
        try pair.disconnect()
        pair.setHoldIO(1, false)
        try pair.run()
        let apart = pair.nodes[0].engine.state
        #expect(apart.role == .primary && apart.disk == .inconsistent && apart.connection < .connected, "\(apart)")
        try pair.request(0, 8, .read(offset: 0, length: 4096))
        try pair.run()
        #expect(succeeded(pair, 0, 8) == nil, "a read without reachable UpToDate data must fail")
        try pair.connect()
        try pair.run()
        let state = pair.nodes[0].engine.state
        #expect(state.role == .primary && state.connection == .connected && state.disk == .upToDate, "\(state) \(pair.nodes[0].log)")
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test func aWriteThePeerFailsWhileItHoldsTheOnlyGoodCopyIsNotAcknowledged() throws {
        // Regressions (simulator seeds 23877, --on-io-error detach, and 6100894, 5100299,
        // 5100731, 810004 with meta-data faults): under protocol A a Primary SyncTarget's write
        // completed once written here and sent, then the source failed it — acknowledged, on no
        // UpToDate disk (this disk is being overwritten by the resync). Such a write now waits
        // for the peer's write ack, whatever the protocol, and fails with the peer's disk.
        var pair = try detachedPrimaryBehind(protocolName: "A")
        try attachHeldMidResync(&pair)
        let failing: Range<Int64> = (6 << 20)..<((6 << 20) + 8192)
        pair.nodes[1].disk.injectFailure(in: failing)
        try pair.request(0, 9, .write(offset: failing.lowerBound, data: block(9)))
        try pair.run()
        #expect(succeeded(pair, 0, 9) == nil, "protocol A, but only the peer's disk will hold it: not complete before its write ack")
        try pair.request(0, 10, .flush)
        pair.setHoldIO(1, false)
        try pair.run()
        let writeFailed = pair.nodes[0].completions.contains { $0.0 == 9 && (try? $0.1.get()) == nil }
        #expect(writeFailed, "the write the peer's disk failed must fail: \(pair.nodes[0].completions.filter { $0.0 == 9 })")
    }

    @Test func aReplacedBlankDiskIsFullySyncedWhileThePrimaryServes() throws {
        // The disk replacement of DRBD's manual: the failed disk is swapped for a new one,
        // `create-md` writes fresh meta-data, `attach` on the running Diskless Primary. The new
        // disk knows no generation: a full sync from the peer.
        var pair = try detachedPrimaryBehind()
        try pair.nodes[0].disk.write([UInt8](repeating: 0, count: Int(pair.nodes[0].engine.size)), at: 0)
        try pair.nodes[0].metadata.create(force: true)
        #expect(try pair.attachInPlace(0) == nil)
        try pair.request(0, 11, .read(offset: 3 << 20, length: 4096))
        try pair.run()
        let state = pair.nodes[0].engine.state
        #expect(state.role == .primary && state.connection == .connected && state.disk == .upToDate, "\(state) \(pair.nodes[0].log)")
        #expect(pair.nodes[0].log.contains { $0.hasPrefix("Resync done as SyncTarget") })
        #expect(pair.nodes[0].log.contains { $0.contains("uuid_compare()=-2 by rule 20") }, "a full sync to the blank disk")
        let readBack = succeeded(pair, 0, 11) == block(3, 4096)
        #expect(readBack, "the read during the full sync was not served from the peer's data")
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test func anAttachIsRefusedWithoutAPeerOrWithUnrelatedData() throws {
        var pair = try detachedPrimaryBehind()
        // Another disk's data (created apart): refused before anything changes.
        var other = try InMemoryCluster(diskSize: 8 << 20, configuration: EngineConfiguration(), seed: 5)
        _ = try other.admin(0) { $0.promote(force: true) }
        let strangerUUID = other.nodes[0].engine.superblock.uuids.current
        #expect(strangerUUID & ~1 != pair.nodes[1].engine.superblock.uuids.current & ~1)
        try pair.nodes[0].metadata.writeSuperblock(other.nodes[0].engine.superblock, flush: true)
        let refusal = try pair.attachInPlace(0)
        #expect(refusal?.description.contains("not an older copy") == true, "\(String(describing: refusal))")
        #expect(pair.nodes[0].engine.state.disk == .diskless && pair.nodes[0].engine.state.connection == .connected)
        // Without the peer: refused.
        try pair.disconnect()
        #expect(try pair.attachInPlace(0)?.description.contains("Connected") == true)
    }
}
