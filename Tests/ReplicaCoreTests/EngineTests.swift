import Foundation
import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Replication engine")
struct EngineTests {
    static let diskSize: Int64 = 16 << 20

    func cluster(_ protocolName: String = "C", seed: UInt64 = 1, configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> InMemoryCluster {
        var configuration = EngineConfiguration()
        configuration.wireProtocol = protocolName
        configure(&configuration)
        return try InMemoryCluster(diskSize: Self.diskSize, configuration: configuration, seed: seed)
    }

    /// The seed's first steps: create-md, up, primary --force, full sync.
    func syncedPair(_ protocolName: String = "C", seed: UInt64 = 1, preload: Bool = true) throws -> InMemoryCluster {
        var pair = try cluster(protocolName, seed: seed)
        if preload { try pair.preload(node: 0, offset: 0, bytes: pattern(3 << 20, seed: seed)) }
        #expect(pair.nodes[0].engine.state.disk == .inconsistent)
        try pair.connect()
        try pair.run()
        #expect(pair.nodes[0].engine.state.description == "cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent")
        #expect(try pair.admin(0) { $0.promote(force: false) } == .noUpToDateDisk)
        #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
        try pair.run()
        return pair
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func seedWalkThroughFullSync(seed: UInt64) throws {
        let pair = try syncedPair(seed: seed)
        for node in 0..<2 {
            #expect(pair.nodes[node].engine.state.connection == .connected)
            #expect(pair.nodes[node].engine.state.disk == .upToDate && pair.nodes[node].engine.state.peerDisk == .upToDate)
            #expect(pair.nodes[node].engine.bitmap.setCount == 0)
        }
        #expect(pair.nodes[0].engine.state.description == "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate")
        #expect(pair.nodes[1].engine.state.description == "cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate")
        #expect(try pair.data(0) == pair.data(1))
        // Both went through the sync states, and the UUIDs agree afterwards (reference 3.2).
        #expect(pair.nodes[0].states.contains { $0.connection == .syncSource })
        #expect(pair.nodes[1].states.contains { $0.connection == .syncTarget })
        let a = pair.nodes[0].engine.superblock.uuids, b = pair.nodes[1].engine.superblock.uuids
        #expect(a.current & ~1 == b.current & ~1 && a.bitmap == 0 && b.bitmap == 0 && a.historyStart == b.historyStart)
        // And the meta-data on disk says the same.
        let onDisk = try pair.nodes[1].metadata.readSuperblock()
        #expect(onDisk.uuids == b && onDisk.flags.contains(.consistent) && onDisk.flags.contains(.wasUpToDate))
    }

    @Test(arguments: ["A", "B", "C"])
    func writesAreMirroredUnderEachProtocol(protocolName: String) throws {
        var pair = try syncedPair(protocolName)
        var generator = SeededGenerator(seed: 99)
        var id: RequestID = 100
        for _ in 0..<300 {
            let blocks = Int(generator.next() % 16) + 1
            let offset = Int64(generator.next() % UInt64((Self.diskSize - (1 << 20)) / 512)) * 512
            try pair.request(0, id, .write(offset: min(offset, pair.nodes[0].engine.size - Int64(blocks * 512)), data: pattern(blocks * 512, seed: id)))
            id += 1
            if generator.next() % 3 == 0 { try pair.step() }
        }
        try pair.request(0, id, .flush)
        try pair.run()
        #expect(pair.nodes[0].completions.count == 301)
        #expect(pair.nodes[0].completions.allSatisfy { (try? $0.1.get()) != nil })
        #expect(try pair.data(0) == pair.data(1))
        #expect(pair.nodes[0].engine.bitmap.setCount == 0)
        #expect(pair.nodes[0].sentFrames[.barrier, default: 0] > 0)
    }

    @Test func completionOrderOfProtocolsABC() throws {
        for name in ["A", "B", "C"] {
            var pair = try syncedPair(name, preload: false)
            // Hold the Secondary's disk: its write cannot finish.
            pair.setHoldIO(1, true)
            try pair.request(0, 7, .write(offset: 4096, data: pattern(4096, seed: 7)))
            try pair.run()
            let done = pair.nodes[0].completions.contains { $0.0 == 7 }
            switch name {
            case "A", "B": #expect(done, "protocol \(name) completes without the peer's disk write")
            default: #expect(!done, "protocol C waits for the peer's disk write")
            }
            // Protocol B still needs the receive ack: pause the meta channel back to the Primary.
            if name == "B" {
                var held = try syncedPair("B", preload: false)
                held.pausedChannels[0] = [.meta]
                try held.request(0, 8, .write(offset: 4096, data: pattern(4096, seed: 8)))
                try held.run()
                #expect(!held.nodes[0].completions.contains { $0.0 == 8 })
                held.pausedChannels[0] = []
                try held.run()
                #expect(held.nodes[0].completions.contains { $0.0 == 8 })
            }
            pair.setHoldIO(1, false)
            try pair.run()
            #expect(pair.nodes[0].completions.contains { $0.0 == 7 })
            #expect(try pair.data(0) == pair.data(1))
        }
    }

    @Test func aReconnectedPrimaryDoesNotCloseAnEpochOfTheOldConnection() throws {
        // Simulator seed 53394: writes sent, the link lost, nothing written meanwhile; after the
        // reconnect the next write closed the old epoch with a barrier the peer acked for an
        // epoch this node no longer knew (a protocol error and a lost connection).
        var pair = try syncedPair(preload: false)
        try pair.request(0, 1, .write(offset: 0, data: pattern(4096, seed: 1)))
        try pair.run()
        try pair.disconnect()
        try pair.run()
        try pair.connect()
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .connected)
        try pair.request(0, 2, .write(offset: 8192, data: pattern(4096, seed: 2)))
        try pair.request(0, 3, .flush)
        try pair.run()
        #expect(!pair.nodes[0].log.contains { $0.contains("protocol error") }, "\(pair.nodes[0].log.suffix(5))")
        #expect(pair.nodes[0].engine.state.connection == .connected)
        #expect(pair.nodes[0].completions.allSatisfy { (try? $0.1.get()) != nil })
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test func barriersCloseEpochsAndAreAcknowledgedWithTheirSize() throws {
        var pair = try syncedPair(preload: false)
        try pair.request(0, 1, .write(offset: 0, data: pattern(4096, seed: 1)))
        try pair.request(0, 2, .write(offset: 8192, data: pattern(4096, seed: 2)))
        try pair.run()
        let barriersBefore = pair.nodes[0].sentFrames[.barrier, default: 0]
        // A completed write closed the epoch: the next write starts a new one behind a barrier.
        try pair.request(0, 3, .write(offset: 16384, data: pattern(4096, seed: 3)))
        try pair.run()
        #expect(pair.nodes[0].sentFrames[.barrier, default: 0] == barriersBefore + 1)
        #expect(pair.nodes[1].sentFrames[.barrierAck, default: 0] >= 1)
        try pair.request(0, 4, .flush)
        try pair.run()
        #expect(pair.nodes[0].completions.last?.0 == 4)
        #expect(pair.nodes[0].engine.writes.transferLog.isEmpty)
    }

    @Test func fullSyncWithConcurrentApplicationWrites() throws {
        for seed: UInt64 in 1...8 {
            var pair = try cluster(seed: seed)
            try pair.preload(node: 0, offset: 0, bytes: pattern(Int(Self.diskSize / 2), seed: seed))
            try pair.connect()
            try pair.run()
            #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
            var id: RequestID = 1
            var generator = SeededGenerator(seed: seed &+ 100)
            while pair.nodes[0].engine.state.connection != .connected || id < 40 {
                if id < 200 {
                    let offset = Int64(generator.next() % 2000) * 4096
                    try pair.request(0, id, .write(offset: offset, data: pattern(4096 * Int(generator.next() % 4 + 1), seed: id)))
                    id += 1
                }
                for _ in 0..<Int(generator.next() % 20) { try pair.step() }
                if id >= 200 { try pair.run(); break }
            }
            try pair.run()
            #expect(pair.nodes[0].engine.state.connection == .connected, "seed \(seed)")
            #expect(pair.nodes[1].engine.state.disk == .upToDate, "seed \(seed)")
            #expect(try pair.data(0) == pair.data(1), "seed \(seed): data differs after sync with concurrent writes")
        }
    }

    @Test func resyncRequestIDsNeverCollideWithApplicationRequestIDs() throws {
        // Regression: resync acks were matched against application writes by id alone, so a
        // resync ack could complete a protocol C write whose own ack had not arrived.
        var pair = try cluster()
        try pair.preload(node: 0, offset: 0, bytes: pattern(4 << 20, seed: 3))
        try pair.connect()
        try pair.run()
        #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
        var sawRequests = false
        for _ in 0..<200 {
            try pair.step()
            let ids = Array(pair.nodes[1].engine.resync.inFlight.keys)
            if !ids.isEmpty { sawRequests = true }
            #expect(ids.allSatisfy { $0 & ResyncProgress.resyncIDFlag != 0 })
        }
        #expect(sawRequests)
        // An application write with the smallest id during the resync completes only with its own ack.
        pair.pausedChannels[0] = [.meta]
        try pair.request(0, 1, .write(offset: 0, data: pattern(4096, seed: 9)))
        try pair.run()
        #expect(!pair.nodes[0].completions.contains { $0.0 == 1 })
        pair.pausedChannels[0] = []
        try pair.run()
        #expect(pair.nodes[0].completions.contains { $0.0 == 1 })
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test func aPeerThatStopsAnsweringIsDeclaredLostAndThePrimaryKeepsServing() throws {
        var pair = try syncedPair(preload: false)
        // An answering peer: pings and acks go back and forth, the connection stays.
        try pair.fireTimers(0)
        try pair.run()
        try pair.fireTimers(0)
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .connected)
        #expect(pair.nodes[0].sentFrames[.ping, default: 0] >= 1 && pair.nodes[1].sentFrames[.pingAck, default: 0] >= 1)
        // A frozen peer: nothing reaches it any more.
        pair.pausedChannels[1] = [.meta, .data]
        try pair.fireTimers(0)  // ping
        try pair.run()
        try pair.fireTimers(0)  // ping-timeout with the ping unanswered
        #expect(pair.nodes[0].engine.state.connection == .wfConnection)
        #expect(pair.nodes[0].log.contains("PingAck did not arrive in time."))
        #expect(Array(pair.nodes[0].states.map(\.connection).suffix(2)) == [.networkFailure, .wfConnection])
        try pair.request(0, 50, .write(offset: 8192, data: pattern(4096, seed: 50)))
        try pair.run()
        #expect(pair.nodes[0].completions.contains { $0.0 == 50 && (try? $0.1.get()) != nil })
        #expect(pair.nodes[0].engine.bitmap.setCount == 1)
        // The peer wakes up and reconnects: only the marked block is resynced.
        pair.pausedChannels[1] = []
        try pair.connect()
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .connected)
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test func theSourceFinishesOnlyWhenEveryResyncReplyIsAnswered() throws {
        // Regression (found by the crashed-Primary netns test): the target's "done" report
        // travels on the data channel, its resync acks on the meta channel. When the report came
        // first, the source finished and wrote a bitmap that still had the unanswered blocks'
        // bits; after a crash they were resynced again.
        var pair = try cluster()
        try pair.preload(node: 0, offset: 0, bytes: pattern(4 << 20, seed: 4))
        try pair.connect()
        try pair.run()
        pair.pausedChannels[0] = [.meta]
        #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
        try pair.run()
        #expect(pair.nodes[1].engine.state.disk == .upToDate)
        #expect(pair.nodes[0].engine.state.connection == .syncSource)
        pair.pausedChannels[0] = []
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .connected)
        #expect(pair.nodes[0].engine.state.peerDisk == .upToDate)
        let source = pair.nodes[0]
        let written = try source.metadata.readBitmap(try source.metadata.readSuperblock(), dataBytes: source.engine.size)
        #expect(written.setCount == 0)
        #expect(try pair.data(0) == pair.data(1))
    }

    /// `pair` with 4 MiB of data on node 0, promoted with `--force`: a full sync in progress,
    /// node 1's disk I/O held (its resync writes wait until released).
    func syncSourceWithHeldTarget(_ pair: InMemoryCluster, seed: UInt64) throws -> InMemoryCluster {
        var pair = pair
        try pair.preload(node: 0, offset: 0, bytes: pattern(4 << 20, seed: seed))
        try pair.connect()
        try pair.run()
        pair.setHoldIO(1, true)
        #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .syncSource)
        return pair
    }

    @Test(arguments: ["A", "C"])
    func aBlockMarkedAfterItsResyncDataWasSentStaysMarked(protocolName: String) throws {
        // Regression (simulator seed 11484): the SyncSource's application write to a range it had
        // already answered a resync request for failed on its disk (pass_on) and was marked; the
        // target's answer to the resync block then cleared the mark, although the target went on
        // to write the application's data and the source's disk did not have it.
        var pair = try syncSourceWithHeldTarget(cluster(protocolName, seed: 7) { $0.onIOError = .passOn }, seed: 7)
        #expect(pair.nodes[0].engine.counters.resyncBytes >= 2 << 20, "the first blocks were answered")
        let range: Range<Int64> = (1 << 20)..<((1 << 20) + 8192)
        pair.nodes[0].disk.injectFailure(in: range)
        try pair.request(0, 1, .write(offset: range.lowerBound, data: [UInt8](repeating: 0xEE, count: range.count)))
        try pair.run()
        pair.setHoldIO(1, false)
        try pair.run()
        #expect(pair.nodes[0].completions.contains { $0.0 == 1 && (try? $0.1.get()) == nil }, "the write failed on the source")
        pair.nodes[0].disk.clearFailures()
        let source = try pair.data(0), target = try pair.data(1)
        var unmarked: [Int64] = []
        for block in 0..<(Int64(source.count) / 4096) {
            let bytes = Int(block * 4096)..<Int(block * 4096 + 4096)
            if source[bytes] != target[bytes], !pair.nodes[0].engine.bitmap.isSet(block), !pair.nodes[1].engine.bitmap.isSet(block) {
                unmarked.append(block)
            }
        }
        #expect(unmarked.isEmpty, "blocks that differ with no bit set: \(unmarked)")
        #expect(source[Int(range.lowerBound)..<Int(range.upperBound)] != target[Int(range.lowerBound)..<Int(range.upperBound)], "the target holds the write")
    }

    @Test func invalidateAndInvalidateRemoteRunAFullSync() throws {
        var pair = try syncedPair()
        try pair.request(0, 1, .write(offset: 0, data: pattern(65536, seed: 77)))
        try pair.run()
        // Damage beta's copy behind the engine's back, then declare it bad.
        try pair.nodes[1].disk.write(pattern(65536, seed: 78), at: 1 << 20)
        #expect(try pair.data(0) != pair.data(1))
        #expect(try pair.admin(1) { $0.invalidate() } == nil)
        try pair.run()
        #expect(pair.nodes[1].engine.state.description == "cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate")
        #expect(try pair.data(0) == pair.data(1))
        try pair.nodes[1].disk.write(pattern(65536, seed: 79), at: 2 << 20)
        #expect(try pair.admin(0) { $0.invalidateRemote() } == nil)
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .connected)
        #expect(try pair.data(0) == pair.data(1))
        #expect(try pair.admin(0) { $0.invalidate() } == .primaryNop)
    }

    @Test func outdateIsRefusedWhileConnected() throws {
        var pair = try syncedPair(preload: false)
        #expect(try pair.admin(1) { $0.outdate() } == .connectedOutdates)
        try pair.disconnect()
        #expect(try pair.admin(1) { $0.outdate() } == nil)
        #expect(pair.nodes[1].engine.state.disk == .outdated)
        #expect(try pair.nodes[1].metadata.readSuperblock().flags.drbdmetaDiskState == .outdated)
        #expect(try pair.admin(1) { $0.promote(force: false) } == .noUpToDateDisk)
    }

    @Test func pauseSyncAndResumeSync() throws {
        var pair = try cluster()
        try pair.preload(node: 0, offset: 0, bytes: pattern(4 << 20, seed: 4))
        try pair.connect()
        try pair.run()
        #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
        while pair.nodes[1].engine.state.connection != .syncTarget { try pair.step() }
        #expect(try pair.admin(1) { $0.setUserSyncPause(true) } == nil)
        try pair.run()
        #expect(pair.nodes[1].engine.state.connection == .pausedSyncT)
        #expect(pair.nodes[0].engine.state.connection == .pausedSyncS)
        #expect(pair.nodes[1].engine.bitmap.setCount > 0)
        #expect(try pair.admin(1) { $0.setUserSyncPause(false) } == nil)
        try pair.run()
        #expect(pair.nodes[1].engine.state.connection == .connected)
        #expect(try pair.data(0) == pair.data(1))
    }

    @Test func secondaryRefusesApplicationIO() throws {
        var pair = try syncedPair(preload: false)
        try pair.request(1, 9, .write(offset: 0, data: pattern(512, seed: 1)))
        try pair.request(1, 10, .read(offset: 0, length: 512))
        #expect(pair.nodes[1].completions.map { $0.0 } == [9, 10])
        #expect(pair.nodes[1].completions.allSatisfy { if case .failure(.notPrimary) = $0.1 { true } else { false } })
    }

    @Test func readsAreServedLocallyOnThePrimary() throws {
        var pair = try syncedPair()
        try pair.request(0, 11, .read(offset: 4096, length: 8192))
        try pair.run()
        let result = try #require(pair.nodes[0].completions.first { $0.0 == 11 })
        #expect(try result.1.get() == Array(pattern(3 << 20, seed: 1)[4096..<12288]))
        #expect(pair.nodes[1].sentFrames[.dataReply, default: 0] == 0)
    }

    @Test func invalidRequestsAreRefused() throws {
        var pair = try syncedPair(preload: false)
        try pair.request(0, 1, .write(offset: 100, data: pattern(512, seed: 1)))
        try pair.request(0, 2, .read(offset: pair.nodes[0].engine.size, length: 512))
        #expect(pair.nodes[0].completions.count == 2)
        #expect(pair.nodes[0].completions.allSatisfy { if case .failure(.invalidRange) = $0.1 { true } else { false } })
    }

    @Test func incompatibleProtocolsGoStandAloneWithTheReason() throws {
        var pair = try cluster("C")
        pair.nodes_setProtocol(1, "A")
        try pair.connect()
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .standAlone || pair.nodes[1].engine.state.connection == .standAlone)
        #expect((pair.nodes[0].log + pair.nodes[1].log).contains { $0.contains("incompatible protocol settings") })
    }

    @Test func skipInitialSyncWithNewCurrentUUIDClearBitmap() throws {
        var pair = try cluster()
        try pair.connect()
        try pair.run()
        #expect(try pair.admin(0) { $0.newCurrentUUID(clearBitmap: true) } == nil)
        try pair.run()
        for node in 0..<2 {
            #expect(pair.nodes[node].engine.state.disk == .upToDate && pair.nodes[node].engine.state.peerDisk == .upToDate)
        }
        #expect(pair.nodes[0].engine.superblock.uuids.current == pair.nodes[1].engine.superblock.uuids.current)
        #expect(pair.nodes[0].sentFrames[.resyncReply, default: 0] == 0 && pair.nodes[1].sentFrames[.resyncRequest, default: 0] == 0)
        #expect(try pair.admin(1) { $0.promote(force: false) } == nil)
    }

    @Test func twoPrimariesAreRefusedUnlessAllowed() throws {
        var pair = try syncedPair(preload: false)
        #expect(try pair.admin(1) { $0.promote(force: false) } == .twoPrimaries)
        var allowed = try cluster { $0.allowTwoPrimaries = true }
        try allowed.connect()
        try allowed.run()
        #expect(try allowed.admin(0) { $0.promote(force: true) } == nil)
        try allowed.run()
        #expect(try allowed.admin(1) { $0.promote(force: false) } == nil)
    }

    @Test func demotionAndRoleSwitch() throws {
        var pair = try syncedPair()
        #expect(try pair.admin(0) { $0.demote(deviceOpen: true) } == .deviceInUse)
        #expect(try pair.admin(0) { $0.demote() } == nil)
        try pair.run()
        #expect(try pair.admin(1) { $0.promote(force: false) } == nil)
        try pair.run()
        try pair.request(1, 1, .write(offset: 0, data: pattern(65536, seed: 42)))
        try pair.run()
        #expect(try pair.data(0) == pair.data(1))
        #expect(pair.nodes[0].engine.state.description == "cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate")
    }

    @Test func writesWhileDisconnectedAreMarkedAndResynced() throws {
        var pair = try syncedPair(preload: false)
        try pair.disconnect()
        #expect(pair.nodes[0].engine.state.connection == .wfConnection)
        try pair.request(0, 1, .write(offset: 1 << 20, data: pattern(8192, seed: 5)))
        try pair.run()
        #expect(pair.nodes[0].engine.bitmap.setCount == 2)
        // A Primary that lost its peer started a new generation.
        #expect(pair.nodes[0].engine.superblock.uuids.bitmap != 0)
        let framesBefore = pair.nodes[0].sentFrames
        try pair.connect()
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .connected)
        #expect(pair.nodes[0].engine.bitmap.setCount == 0)
        #expect(try pair.data(0) == pair.data(1))
        // A 16 MiB disk's bitmap (64 words) with 2 bits set goes out as one compact frame.
        #expect(pair.nodes[0].sentFrames[.compressedBitmap, default: 0] - framesBefore[.compressedBitmap, default: 0] == 1)
        #expect(pair.nodes[0].sentFrames[.bitmap, default: 0] == framesBefore[.bitmap, default: 0])
    }
}

extension InMemoryCluster {
    /// Test helper: change one node's wire protocol before connecting.
    mutating func nodes_setProtocol(_ node: Int, _ name: String) {
        modifyEngine(node) { $0.configuration.wireProtocol = name }
    }
}
