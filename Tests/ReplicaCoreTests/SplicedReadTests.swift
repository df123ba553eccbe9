import Foundation
import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// Reads for the peer kept in the page cache (`splice` into a pipe) instead of memory.
@Suite("Spliced reads for the peer")
struct SplicedReadTests {
    static let size = 4 << 20

    /// A file target holding a pattern, in the test's temporary folder.
    func patternFile() throws -> (FileBlockTarget, [UInt8], String) {
        let path = NSTemporaryDirectory() + "replica-splice-\(UUID().uuidString.prefix(8)).img"
        let pattern = (0..<Self.size).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 12) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(pattern)))
        return (try FileBlockTarget(path: path), pattern, path)
    }

    /// The completion's held data, or nil when the read went to memory.
    func held(_ completion: LocalIOCompletion) -> (any HeldDataStorage)? {
        if case .heldRead(let held) = completion { return held }
        return nil
    }

    /// The completion's result, or nil when the data was held.
    func result(_ completion: LocalIOCompletion) -> LocalIOResult? {
        if case .result(let result) = completion { return result }
        return nil
    }

    @Test(arguments: [(0, 1 << 20), (4096 * 7, 64 << 10), (512, 4096 * 3), (1 << 20, 4096)])
    func aReadForThePeerIsHeldAndGivesTheDiskBytes(offset: Int, length: Int) throws {
        let (disk, pattern, path) = try patternFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let before = SplicedRead.readsSpliced
        let completion = LocalIO.readForPeer(offset: Int64(offset), length: length).complete(on: disk, held: nil)
        let data = try #require(held(completion), "\(completion)")
        #expect(data.count == length)
        #expect(SplicedRead.readsSpliced > before)
        #expect(try data.takeBytes() == Array(pattern[offset..<(offset + length)]))
    }

    @Test func anOrdinaryReadIsNeverHeld() throws {
        let (disk, pattern, path) = try patternFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let completion = LocalIO.read(offset: 8192, length: 1 << 20).complete(on: disk, held: nil)
        #expect(result(completion) == .success(Array(pattern[8192..<(8192 + (1 << 20))])))
    }

    @Test func aTargetWithoutPageCacheReadsIntoMemory() throws {
        let memory = MemoryBlockTarget(size: 1 << 20)
        try memory.write([1, 2, 3, 4], at: 4096)
        #expect(memory.pageCacheDescriptor == nil)
        let completion = LocalIO.readForPeer(offset: 4096, length: 4096).complete(on: memory, held: nil)
        guard case .success(let bytes)? = result(completion) else {
            Issue.record("\(completion)")
            return
        }
        #expect(bytes.prefix(4) == [1, 2, 3, 4])
    }

    @Test func aReadPastTheEndFailsAsARead() throws {
        let (disk, _, path) = try patternFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let completion = LocalIO.readForPeer(offset: Int64(Self.size - 4096), length: 8192).complete(on: disk, held: nil)
        guard case .failure(let error)? = result(completion) else {
            Issue.record("\(completion)")
            return
        }
        #expect(error.operation == .read)
        #expect(error.offset == Int64(Self.size - 4096))
    }

    @Test func heldDataHandlesNameTheirStorageOnce() throws {
        let (disk, _, path) = try patternFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try #require(disk.pageCacheDescriptor)
        var store = HeldDataStore()
        let first = store.hold(try #require(SplicedRead.read(file, offset: 0, length: 4096)))
        let second = store.hold(try #require(SplicedRead.read(file, offset: 0, length: 4096)))
        #expect(first != second)
        #expect(first.count == 4096)
        _ = try store.take(first)
        #expect(throws: BlockIOError.self) { try store.take(first) }
        store.release(keeping: [])
        #expect(store.count == 0)
        #expect(throws: BlockIOError.self) { try store.take(second) }
    }

    @Test(arguments: [UInt64(1), 2, 3], [false, true])
    func aFullSyncWithHeldReadsAndWritesDuringItEndsEqual(seed: UInt64, receivedHeld: Bool) throws {
        // The source's runtime holds its resync reads; their bytes are taken when the reply
        // is sent, after writes that came later may have changed them.
        var pair = try InMemoryCluster(diskSize: 8 << 20, seed: seed)
        pair.holdsReadsForPeer = true
        // And, the second time, the target receives the blocks held (as spliced from the socket).
        pair.holdsReceivedBlocks = receivedHeld
        try pair.preload(node: 0, offset: 0, bytes: (0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 >> 9 &+ 1) })
        try pair.connect()
        try pair.run()
        #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
        var id: RequestID = 1
        var writesDuringSync = 0
        for round in 0..<40 {
            _ = try pair.step()
            _ = try pair.step()
            if pair.nodes[0].engine.state.connection == .syncSource { writesDuringSync += 1 }
            let offset = Int64((round * 7919) % 2000) * 4096
            try pair.request(0, id, .write(offset: offset, data: [UInt8](repeating: UInt8(round), count: 8192)))
            id += 1
        }
        try pair.run()
        #expect(pair.nodes[0].heldReads > 0)
        #expect((pair.nodes[1].heldReceives > 40) == receivedHeld)
        #expect(writesDuringSync > 10)
        #expect(pair.nodes[0].engine.state.description == "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate")
        #expect(pair.nodes[1].engine.state.disk == .upToDate)
        #expect(try pair.data(0) == pair.data(1))
    }
}
