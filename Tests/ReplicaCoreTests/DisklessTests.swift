import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// `detach`, `on-io-error`, and a Diskless node served by its peer, on the in-memory runtime.
@Suite("Diskless operation")
struct DisklessTests {
    /// Two connected nodes with blank disks marked in sync, node 0 Primary.
    func pair(_ configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> InMemoryCluster {
        var configuration = EngineConfiguration()
        configure(&configuration)
        return try InMemoryCluster.primaryPair(configuration: configuration, seed: 11)
    }

    func block(_ value: UInt8, _ count: Int = 8192) -> [UInt8] { [UInt8](repeating: value, count: count) }

    func succeeded(_ pair: InMemoryCluster, _ node: Int, _ id: RequestID) -> [UInt8]? {
        pair.nodes[node].completions.last { $0.0 == id }.flatMap { try? $0.1.get() }
    }

    /// Why request `id` failed (nil if it succeeded or has not completed).
    func failure(_ pair: InMemoryCluster, _ node: Int, _ id: RequestID) -> RequestError? {
        guard let result = pair.nodes[node].completions.last(where: { $0.0 == id })?.1, case .failure(let error) = result else { return nil }
        return error
    }

    @Test func detachedSecondaryIsResyncedFromTheBitmapWhenItAttachesAgain() throws {
        var pair = try pair()
        try pair.request(0, 1, .write(offset: 0, data: block(1)))
        try pair.run()
        #expect(try pair.admin(1) { $0.detach() } == nil)
        try pair.run()
        #expect(pair.nodes[1].diskDetached)
        #expect(pair.nodes[1].engine.state.disk == .diskless)
        #expect(pair.nodes[0].engine.state.peerDisk == .diskless)
        #expect(pair.nodes[0].engine.state.connection == .connected)
        #expect(pair.nodes[0].engine.superblock.uuids.bitmap != 0, "the Primary started a new generation")
        // The Primary goes on writing; what the detached disk misses is marked.
        try pair.request(0, 2, .write(offset: 1 << 20, data: block(2)))
        try pair.run()
        #expect(succeeded(pair, 0, 2) != nil)
        // The two blocks written while detached, and the two of the first write, whose epoch
        // the peer had not confirmed as durable (no barrier ack) when it let its disk go.
        #expect(pair.nodes[0].engine.bitmap.setCount == 4)
        #expect(try pair.data(0) != pair.data(1))
        // attach: a bitmap resync of those two blocks only, then both UpToDate and equal.
        let resentBefore = pair.nodes[0].engine.counters.resyncBytes
        try pair.reattach(1)
        try pair.run()
        #expect(pair.nodes[1].engine.state.disk == .upToDate)
        #expect(pair.nodes[0].engine.state.peerDisk == .upToDate)
        // A bitmap resync (rule 50) of those four blocks.
        #expect(pair.nodes[1].log.contains("uuid_compare()=-1 by rule 50"))
        #expect(pair.nodes[0].engine.counters.resyncBytes - resentBefore == 16384)
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test func aPrimaryWhoseDiskFailsNextToADisklessPeerConnectsOnlyToItsOwnData() throws {
        // Regression (simulator seed 30208, --on-io-error detach): the Primary's disk failed while
        // its peer was Diskless; it took the peer's UUIDs for the data it goes on with, and when
        // the peer attached its stale disk the Primary was served from it.
        var pair = try pair { $0.onIOError = .detach }
        // A reconnect first: the handshake then carries the generation both disks share.
        try pair.disconnect()
        try pair.request(0, 1, .write(offset: 0, data: block(1)))
        try pair.run()
        try pair.connect()
        try pair.run()
        #expect(pair.nodes[1].engine.state.disk == .upToDate)
        #expect(try pair.admin(1) { $0.detach() } == nil)
        try pair.run()
        try pair.request(0, 2, .write(offset: 1 << 20, data: block(2)))
        try pair.run()
        pair.nodes[0].disk.injectFailure(in: (2 << 20)..<((2 << 20) + 8192))
        try pair.request(0, 3, .write(offset: 2 << 20, data: block(3)))
        try pair.run()
        #expect(pair.nodes[0].engine.state.disk == .diskless && pair.nodes[0].engine.state.role == .primary)
        try pair.reattach(1)
        try pair.run()
        #expect(pair.nodes[0].log.contains { $0.hasPrefix("Can only connect to data with current UUID") }, "\(pair.nodes[0].log)")
        #expect(pair.nodes[0].engine.state.connection < .connected, "served from a disk that missed its writes")
    }

    @Test func detachedPrimaryReadsAndWritesThroughItsPeer() throws {
        var pair = try pair()
        try pair.request(0, 1, .write(offset: 4096, data: block(7)))
        try pair.run()
        #expect(try pair.admin(0) { $0.detach() } == nil)
        try pair.run()
        #expect(pair.nodes[0].engine.state.disk == .diskless)
        #expect(pair.nodes[0].engine.state.role == .primary)
        try pair.request(0, 2, .read(offset: 4096, length: 8192))
        try pair.run()
        #expect(succeeded(pair, 0, 2) == block(7), "read from the peer")
        #expect(pair.nodes[0].sentFrames[.dataRequest, default: 0] == 1)
        try pair.request(0, 3, .write(offset: 2 << 20, data: block(8)))
        try pair.request(0, 4, .flush)
        try pair.run()
        #expect(succeeded(pair, 0, 3) != nil)
        #expect(succeeded(pair, 0, 4) != nil)
        #expect(try pair.nodes[1].disk.read(count: 8192, at: 2 << 20) == block(8))
        #expect(try pair.nodes[0].disk.read(count: 8192, at: 2 << 20) != block(8), "the detached disk is not written")
        #expect(pair.nodes[1].engine.bitmap.setCount == 2, "the peer marks what the detached disk lacks")
        // Without the peer no data is reachable.
        try pair.disconnect()
        try pair.request(0, 5, .read(offset: 0, length: 4096))
        try pair.run()
        #expect(failure(pair, 0, 5) == .noUpToDateData)
    }

    @Test func aPrimaryWithoutAnUpToDatePeerCannotDetach() throws {
        var pair = try pair()
        try pair.disconnect()
        #expect(try pair.admin(0) { $0.detach() } == .noUpToDateDisk)
        #expect(pair.nodes[0].engine.state.disk == .upToDate)
        #expect(try pair.admin(1) { $0.detach() } == nil, "a Secondary may")
        #expect(try pair.admin(1) { $0.detach() } == .isDiskless)
    }

    @Test func onIOErrorDetachOnTheSecondary() throws {
        var pair = try pair()
        pair.nodes[1].disk.injectFailure(in: (1 << 20)..<(2 << 20))
        try pair.request(0, 1, .write(offset: 1 << 20, data: block(3)))
        try pair.run()
        #expect(pair.nodes[1].engine.state.disk == .diskless)
        #expect(pair.nodes[1].log.contains { $0.contains("on-io-error detach") })
        #expect(pair.nodes[0].engine.state.peerDisk == .diskless)
        #expect(succeeded(pair, 0, 1) != nil, "the Primary's own write succeeded")
        #expect(pair.nodes[0].engine.bitmap.setCount == 2, "and is marked for the peer")
        pair.nodes[1].disk.clearFailures()
        try pair.reattach(1)
        try pair.run()
        #expect(pair.nodes[1].engine.state.disk == .upToDate)
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test(arguments: [OnIOError.detach, .callLocalIOError])
    func onIOErrorDetachOnThePrimaryServesTheRequestFromThePeer(policy: OnIOError) throws {
        var pair = try pair { $0.onIOError = policy }
        try pair.request(0, 1, .write(offset: 1 << 20, data: block(4)))
        try pair.run()
        pair.nodes[0].disk.injectFailure(in: (1 << 20)..<(2 << 20))
        try pair.request(0, 2, .read(offset: 1 << 20, length: 8192))
        try pair.run()
        #expect(succeeded(pair, 0, 2) == block(4), "the failed read is served by the peer")
        #expect(pair.nodes[0].engine.state.disk == .diskless)
        #expect(pair.nodes[0].log.contains { $0.contains("on-io-error \(policy.rawValue)") })
        #expect(pair.nodes[0].log.contains("handler: local-io-error") == (policy == .callLocalIOError))
        try pair.request(0, 3, .write(offset: (1 << 20) + 8192, data: block(5)))
        try pair.run()
        #expect(succeeded(pair, 0, 3) != nil)
        #expect(try pair.nodes[1].disk.read(count: 8192, at: (1 << 20) + 8192) == block(5))
    }

    @Test func aWriteThatFailsLocallyUnderDetachSucceedsThroughThePeer() throws {
        var pair = try pair()
        pair.nodes[0].disk.injectFailure(in: (1 << 20)..<(2 << 20))
        try pair.request(0, 1, .write(offset: 1 << 20, data: block(6)))
        try pair.run()
        #expect(succeeded(pair, 0, 1) != nil, "protocol C: the peer wrote it")
        #expect(pair.nodes[0].engine.state.disk == .diskless)
        #expect(try pair.nodes[1].disk.read(count: 8192, at: 1 << 20) == block(6))
        #expect(pair.nodes[1].engine.bitmap.setCount == 2, "the peer was told which blocks the failed disk lacks")
    }

    @Test func passOnReportsTheError() throws {
        var pair = try pair { $0.onIOError = .passOn }
        pair.nodes[0].disk.injectFailure(in: (1 << 20)..<(2 << 20))
        try pair.request(0, 1, .write(offset: 1 << 20, data: block(6)))
        try pair.run()
        guard case .ioError(let error)? = failure(pair, 0, 1) else {
            Issue.record("the write did not fail with the disk's error: \(String(describing: failure(pair, 0, 1)))")
            return
        }
        #expect(error.errno == 5 && error.operation == .write)
        #expect(pair.nodes[0].engine.state.disk == .upToDate)
        #expect(pair.nodes[0].engine.bitmap.setCount == 2, "the peer has the data this disk lacks: marked")
    }

    @Test func aNodeConfiguredWithoutADiskIsServedByItsPeer() throws {
        // `disk none`: node 1 never had a disk. It takes node 0's size on connect, becomes
        // Primary once node 0 is UpToDate and Secondary, and reads and writes through it.
        var pair = try InMemoryCluster(diskSize: 8 << 20, seed: 5)
        try pair.preload(node: 0, offset: 0, bytes: block(7, 1 << 20))
        pair.modifyEngine(1) { $0 = .withoutDisk(configuration: EngineConfiguration(), entropySeed: 3) }
        #expect(pair.nodes[1].engine.state.description == "cs:StandAlone ro:Secondary/Unknown ds:Diskless/DUnknown")
        #expect(pair.nodes[1].engine.size == 0)
        #expect(try pair.admin(1) { $0.promote(force: true) } != nil, "no data to make the truth")
        #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
        try pair.connect()
        try pair.run()
        #expect(pair.nodes[0].engine.state.description == "cs:Connected ro:Primary/Secondary ds:UpToDate/Diskless")
        #expect(pair.nodes[1].engine.state.description == "cs:Connected ro:Secondary/Primary ds:Diskless/UpToDate")
        #expect(pair.nodes[1].engine.size == pair.nodes[0].engine.size)
        #expect(try pair.admin(0) { $0.demote() } == nil)
        try pair.run()
        #expect(try pair.admin(1) { $0.promote(force: false) } == nil)
        try pair.run()
        try pair.request(1, 1, .write(offset: 8192, data: block(9)))
        try pair.request(1, 2, .flush)
        try pair.run()
        try pair.request(1, 3, .read(offset: 0, length: 16384))
        try pair.run()
        #expect(succeeded(pair, 1, 1) != nil)
        #expect(succeeded(pair, 1, 2) != nil)
        #expect(succeeded(pair, 1, 3) == block(7, 8192) + block(9, 8192))
        #expect(try pair.data(0)[8192..<16384] == block(9)[...])
        // Nothing of node 1's own disk was used: no local I/O, no meta-data.
        #expect(pair.nodes[1].engine.counters.diskWritten == 0 && pair.nodes[1].engine.counters.diskRead == 0)
        #expect(try pair.nodes[1].metadata.readSuperblock().uuids.current == GenerationUUIDs.justCreated.current)
        // Its peer gone, a node without a disk has nothing to serve from.
        try pair.disconnect()
        try pair.request(1, 4, .read(offset: 0, length: 4096))
        try pair.run()
        #expect(failure(pair, 1, 4) != nil)
    }
}
