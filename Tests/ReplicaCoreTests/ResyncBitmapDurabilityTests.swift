import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// A SyncTarget's saved bitmap never calls a block in sync before the resync write that made
/// it so is durable (simulator seed 951557: a crash lost the unflushed write while the bitmap
/// on disk no longer marked the block).
@Suite("Resync bits saved only after their writes are flushed")
struct ResyncBitmapDurabilityTests {
    /// An engine of a 64 MiB disk whose bitmap has `set` out of sync and is saved.
    func engine(set: Range<Int64>) throws -> VolumeEngine {
        let layout = try MetadataLayout.internalLayout(deviceBytes: 64 << 20)
        var bitmap = Bitmap(coveringBytes: layout.usableDataBytes)
        bitmap.set(set)
        bitmap.markPagesSaved()
        return VolumeEngine(configuration: EngineConfiguration(), superblock: Superblock(layout: layout), bitmap: bitmap,
                            dataSize: layout.usableDataBytes, entropySeed: 1)
    }

    /// The bits of `runs` as the effects' page images say them, for bits `bits`.
    func savedBits(_ effects: [EngineEffect], _ bits: Range<Int64>) -> [Bool] {
        var saved = [Bool](repeating: false, count: bits.count)
        for case .writeBitmap(let runs) in effects {
            for run in runs {
                for (index, bit) in bits.enumerated() {
                    let byte = Int(bit / 8) - run.firstPage * Bitmap.pageBytes
                    guard byte >= 0, byte < run.bytes.count else { continue }
                    saved[index] = run.bytes[byte] & UInt8(1 << (bit % 8)) != 0
                }
            }
        }
        return saved
    }

    @Test func bitsClearedByUnflushedResyncWritesAreSavedAsSetUntilAFlushCoversThem() throws {
        var engine = try engine(set: 100..<120)
        // A resync write of bits 100..<110 completed: cleared in memory, not flushed yet.
        engine.bitmap.clear(100..<110)
        engine.resyncClears.cleared(100..<110)
        var effects: [EngineEffect] = []
        engine.persistBitmap(&effects)
        #expect(savedBits(effects, 100..<120) == [Bool](repeating: true, count: 20), "saved as in sync before the write is durable")
        #expect(!engine.bitmap.isSet(100), "memory still knows the block is in sync")

        // A flush submitted now and done: the next save writes the bits cleared.
        var flush: [EngineEffect] = []
        engine.submit(.flush, purpose: .receiverFlush(1), &flush)
        guard case .localIO(let id, _)? = flush.first(where: { if case .localIO = $0 { true } else { false } }) else {
            Issue.record("no flush submitted: \(flush)")
            return
        }
        engine.receiver.epochs = [ReceiveEpoch(number: 1)]
        var done: [EngineEffect] = []
        engine.localIOCompleted(id, .success([]), &done)
        var after: [EngineEffect] = []
        engine.persistBitmap(&after)
        #expect(savedBits(after, 100..<120) == [Bool](repeating: false, count: 10) + [Bool](repeating: true, count: 10))
    }

    @Test func aClearMadeAfterTheFlushWasSubmittedWaitsForTheNextOne() throws {
        var engine = try engine(set: 0..<64)
        var flush: [EngineEffect] = []
        engine.submit(.flush, purpose: .receiverFlush(1), &flush)
        engine.bitmap.clear(0..<8)
        engine.resyncClears.cleared(0..<8)
        guard case .localIO(let id, _)? = flush.first(where: { if case .localIO = $0 { true } else { false } }) else {
            Issue.record("no flush submitted: \(flush)")
            return
        }
        #expect(engine.resyncClears.completed(id, succeeded: true).isEmpty, "a flush submitted before the write does not cover it")
        var effects: [EngineEffect] = []
        engine.persistBitmap(&effects)
        #expect(savedBits(effects, 0..<8) == [Bool](repeating: true, count: 8))
    }
}
