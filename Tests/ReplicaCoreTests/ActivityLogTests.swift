import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Activity log")
struct ActivityLogTests {
    @Test func transactionRoundTrip() throws {
        let transaction = ActivityLogTransaction(
            number: 42, contextSize: 1237, contextStartSlot: 919,
            updates: [(3, 77), (4, 0xFFFF_FFFF)], context: (0..<318).map { UInt32($0) })
        let bytes = transaction.encoded()
        #expect(bytes.count == 4096)
        let decoded = try ActivityLogTransaction(bytes: bytes)
        #expect(decoded.number == 42)
        #expect(decoded.updates.map(\.slot) == [3, 4])
        #expect(decoded.context.prefix(318) == ArraySlice((0..<318).map { UInt32($0) }))
        #expect(decoded.context[318] == ActivityLogTransaction.freeExtent)
    }

    @Test func tornTransactionFailsItsChecksum() {
        var bytes = ActivityLogTransaction(number: 1, contextSize: 257, contextStartSlot: 0, updates: [(0, 5)], context: []).encoded()
        bytes[2000] ^= 0x40
        #expect(throws: ActivityLogTransaction.DecodeError.self) { try ActivityLogTransaction(bytes: bytes) }
        bytes[0] = 0
        do {
            _ = try ActivityLogTransaction(bytes: bytes)
        } catch {
            #expect(error.description.contains("bad magic"))
        }
    }

    @Test func ringPlacementFollowsStripes() {
        #expect((0..<8).map { ActivityLogTransaction.blockIndex(of: UInt32($0), stripes: 1, stripeSize4k: 8) } == Array(0..<8))
        #expect(ActivityLogTransaction.blockIndex(of: 9, stripes: 1, stripeSize4k: 8) == 1)
        // Two stripes of 4 blocks: transactions alternate between the stripes.
        #expect((0..<8).map { ActivityLogTransaction.blockIndex(of: UInt32($0), stripes: 2, stripeSize4k: 4) } == [0, 4, 1, 5, 2, 6, 3, 7])
    }

    @Test func lruEvictsTheLeastRecentlyUsedIdleExtent() {
        var log = ActivityLog(slotCount: 3)
        #expect(log.activate(1...1) == .needsTransaction(evicted: []))
        _ = log.makeTransaction()
        log.release(1...1)
        #expect(log.activate(2...3) == .needsTransaction(evicted: []))
        _ = log.makeTransaction()
        log.release(2...3)
        #expect(log.activate(1...1) == .hot)
        log.release(1...1)
        // Slot of extent 2 is the least recently used.
        #expect(log.activate(9...9) == .needsTransaction(evicted: [2]))
        #expect(log.activeExtents == [1, 3, 9])
        #expect(log.checkInvariants())
    }

    @Test func extentsWithWritesInFlightAreNotEvicted() {
        var log = ActivityLog(slotCount: 2)
        _ = log.activate(1...2)
        _ = log.makeTransaction()
        #expect(log.activate(3...3) == .busy)
        log.release(1...1)
        #expect(log.activate(3...3) == .needsTransaction(evicted: [1]))
        #expect(log.checkInvariants())
    }

    @Test func replayReconstructsTheActiveSetFromTheRing() throws {
        var log = ActivityLog(slotCount: 67)
        var ring = [[UInt8]](repeating: ActivityLogTransaction.initialized.encoded(), count: 8)
        var expected: Set<UInt32> = []
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<40 {
            let extent = UInt32.random(in: 0..<500, using: &generator)
            switch log.activate(extent...extent) {
            case .needsTransaction:
                let transaction = log.makeTransaction()
                ring[ActivityLogTransaction.blockIndex(of: transaction.number, stripes: 1, stripeSize4k: 8)] = transaction.encoded()
            case .hot, .busy:
                break
            }
            log.release(extent...extent)
            expected = Set(log.activeExtents)
        }
        let replay = ActivityLogReplay(blocks: ring, slots: 67)
        #expect(Set(replay.activeExtents) == expected)
        #expect(replay.damagedBlocks.isEmpty)
    }

    @Test func replayOfFreshRingIsEmptyAndToleratesOneTornBlock() {
        var ring = [[UInt8]](repeating: ActivityLogTransaction.initialized.encoded(), count: 8)
        #expect(ActivityLogReplay(blocks: ring, slots: 257).activeExtents.isEmpty)
        ring[0] = ActivityLogTransaction(number: 1, contextSize: 257, contextStartSlot: 0, updates: [(0, 12)], context: [12]).encoded()
        ring[1] = ActivityLogTransaction(number: 2, contextSize: 257, contextStartSlot: 0, updates: [(1, 13)], context: [12]).encoded()
        ring[1][3000] ^= 1
        let replay = ActivityLogReplay(blocks: ring, slots: 257)
        #expect(replay.activeExtents == [12])
        #expect(replay.damagedBlocks.map(\.index) == [1])
    }

    @Test func replayHandlesTransactionNumberWrap() {
        let ring = [
            ActivityLogTransaction(number: 0xFFFF_FFFF, contextSize: 100, contextStartSlot: 0, updates: [(0, 5)], context: [5]).encoded(),
            ActivityLogTransaction(number: 0, contextSize: 100, contextStartSlot: 0, updates: [(0, 6)], context: []).encoded(),
        ]
        let replay = ActivityLogReplay(blocks: ring, slots: 100)
        #expect(replay.activeExtents == [6])
        #expect(replay.newestTransaction == 0)
    }
}
