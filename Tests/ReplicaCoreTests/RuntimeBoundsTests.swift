import Foundation
import Synchronization
import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// The runtime with real threads over the in-memory transport (a message channel with
/// credits): back-pressure against a peer that stops taking frames, volumes on one link, and
/// `down` that drains within its time.
@Suite("Runtime bounds and shutdown", .serialized)
struct RuntimeBoundsTests {
    static let diskSize: Int64 = 32 << 20

    /// A disk whose writes wait while its gate is closed (a stuck device).
    final class GatedDisk: BlockTarget, @unchecked Sendable {
        let underlying: MemoryBlockTarget
        private let gate = NSCondition()
        private var open = true

        init(_ underlying: MemoryBlockTarget) { self.underlying = underlying }

        func close() { gate.withLock { open = false } }
        func release() { gate.withLock { open = true; gate.broadcast() } }

        var size: Int64 { underlying.size }
        var logicalBlockSize: Int { 512 }
        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlockIOError) { try underlying.read(into: buffer, at: offset) }
        func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(BlockIOError) {
            gate.withLock { while !open { gate.wait() } }
            try underlying.write(buffer, at: offset)
        }
        func flush() throws(BlockIOError) {}
        func discard(at offset: Int64, length: Int64) throws(BlockIOError) { try underlying.discard(at: offset, length: length) }
        func writeZeroes(at offset: Int64, length: Int64) throws(BlockIOError) { try underlying.writeZeroes(at: offset, length: length) }
    }

    /// A volume setup on `disk` (meta-data internal on `memory`, the same bytes), with
    /// timeouts long enough that a frozen peer is not declared lost during the test.
    func setup(_ number: UInt16 = 0, disk: any BlockTarget, memory: MemoryBlockTarget, seed: UInt64) throws -> VolumeSetup {
        let metadata = try MetadataDevice.internalMetadata(memory, name: "mem\(number)")
        if (try? metadata.readSuperblock()) == nil { try metadata.create(force: true) }
        var configuration = EngineConfiguration()
        configuration.pingIntervalMilliseconds = 120_000
        configuration.pingTimeoutMilliseconds = 30_000
        configuration.koCount = 0
        let attachment = try VolumeAttachment.attach(disk: disk, metadata: metadata, configuration: configuration,
                                                     metadataFlushes: true, entropySeed: seed)
        return VolumeSetup(number: number, attachment: attachment)
    }

    /// Submits a write and returns a box that records its outcome.
    final class Outcomes: @unchecked Sendable {
        let state = Mutex<(done: Int, failed: Int)>((0, 0))
        func record(_ result: Result<[UInt8], RequestError>) {
            state.withLock { if case .success = result { $0.done += 1 } else { $0.failed += 1 } }
        }
        var done: Int { state.withLock { $0.done } }
        var failed: Int { state.withLock { $0.failed } }
    }

    func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    /// Two runtimes connected in memory, volumes `numbers` on each, blank disks declared in
    /// sync, node 0 Primary.
    func connectedPair(volumes numbers: [UInt16] = [0], limits: LinkLimits, credits: Int = 8)
        throws -> (ReplicationRuntime, ReplicationRuntime, InMemoryTransportPair, [[MemoryBlockTarget]]) {
        let pair = InMemoryTransportPair(credits: credits, drainMarkBytes: limits.drainMarkBytes)
        var disks: [[MemoryBlockTarget]] = []
        var runtimes: [ReplicationRuntime] = []
        for side in 0..<2 {
            let memories = numbers.map { _ in MemoryBlockTarget(size: Self.diskSize) }
            let setups = try zip(numbers, memories).map { number, memory in
                try setup(number, disk: memory, memory: memory, seed: UInt64(side * 10) + UInt64(number) + 1)
            }
            disks.append(memories)
            runtimes.append(ReplicationRuntime(volumes: setups, transport: pair.transport(side), limits: limits, name: "bounds\(side)"))
        }
        for runtime in runtimes { try runtime.connect() }
        let connected = runtimes.allSatisfy { runtime in
            runtime.waitForResource(timeout: 10) { $0.volumes.allSatisfy { $0.state.connection == .connected } }
        }
        #expect(connected, "the runtimes did not connect")
        #expect(throws: Never.self) { try runtimes[0].admin { $0.newCurrentUUID(clearBitmap: true) }.get() }
        let synced = runtimes[1].waitForResource(timeout: 10) { $0.volumes.allSatisfy { $0.state.disk == .upToDate && $0.state.peerDisk == .upToDate } }
        #expect(synced)
        #expect(throws: Never.self) { try runtimes[0].admin(undo: { $0.demote() }) { $0.promote(force: false) }.get() }
        return (runtimes[0], runtimes[1], pair, disks)
    }

    @Test func aFrozenPeerHoldsTheWritesBackAndTheQueueStaysWithinItsBound() throws {
        let limits = LinkLimits(queueBytes: 1 << 20, ioDepth: 8000)
        let (primary, secondary, pair, disks) = try connectedPair(limits: limits)
        defer {
            primary.shutdown(timeout: 5)
            secondary.shutdown(timeout: 5)
        }
        pair.freezeReceiving(side: 1, true)
        let outcomes = Outcomes()
        let writes = 400
        let size = 64 << 10
        for index in 0..<writes {
            let data = [UInt8](repeating: UInt8(truncatingIfNeeded: index + 1), count: size)
            primary.submit(.write(offset: Int64(index % 256) * Int64(size), data: data)) { outcomes.record($0) }
        }
        // The peer takes nothing: writes stop completing, the rest wait held, the queue is bounded.
        let congested = waitUntil(10) { primary.resourceSnapshot.congested }
        #expect(congested, "the runtime never held requests back")
        var largestQueue = 0
        for _ in 0..<50 {
            let snapshot = primary.resourceSnapshot
            largestQueue = max(largestQueue, snapshot.queuedBytes)
            usleep(20_000)
        }
        let held = primary.resourceSnapshot.heldRequests
        #expect(held > 0)
        // At most the bound plus what the last admitted step added (one write and its frame).
        #expect(largestQueue <= limits.queueBytes + size + 4096, "queued \(largestQueue) bytes, bound \(limits.queueBytes)")
        #expect(outcomes.done + outcomes.failed < writes)
        // The peer goes on: every write completes, on both disks.
        pair.freezeReceiving(side: 1, false)
        let finished = waitUntil(30) { outcomes.done + outcomes.failed == writes }
        #expect(finished, "\(outcomes.done) of \(writes) writes completed")
        #expect(outcomes.failed == 0)
        #expect(primary.resourceSnapshot.congested == false)
        let flushed = Outcomes()
        primary.submit(.flush) { flushed.record($0) }
        #expect(waitUntil(10) { flushed.done == 1 })
        let left = try disks[0][0].read(count: 256 * size, at: 0)
        let right = try disks[1][0].read(count: 256 * size, at: 0)
        #expect(left == right, "the disks differ")
    }

    @Test func twoVolumesReplicateEachItsOwnData() throws {
        let (primary, secondary, _, disks) = try connectedPair(volumes: [0, 7], limits: LinkLimits())
        defer {
            primary.shutdown(timeout: 5)
            secondary.shutdown(timeout: 5)
        }
        let outcomes = Outcomes()
        for index in 0..<64 {
            for volume: UInt16 in [0, 7] {
                let data = [UInt8](repeating: UInt8(truncatingIfNeeded: index &* 3 &+ Int(volume)), count: 8192)
                primary.submit(.write(offset: Int64(index) * 8192, data: data), volume: volume) { outcomes.record($0) }
            }
        }
        #expect(waitUntil(20) { outcomes.done == 128 }, "\(outcomes.done) writes done, \(outcomes.failed) failed")
        for (index, volume) in [UInt16(0), 7].enumerated() {
            let mine = try disks[0][index].read(count: 64 * 8192, at: 0)
            let peer = try disks[1][index].read(count: 64 * 8192, at: 0)
            #expect(mine == peer, "volume \(volume) differs between the nodes")
            #expect(mine[8192] == UInt8(truncatingIfNeeded: 3 + Int(volume)), "volume \(volume) holds another volume's data")
        }
        let states = secondary.resourceSnapshot.volumes.map(\.state.description)
        #expect(states == ["cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate", "cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate"])
    }

    @Test func downWithAWriteStuckLeavesTheMetadataUnclean() throws {
        let memory = MemoryBlockTarget(size: Self.diskSize)
        let disk = GatedDisk(memory)
        let runtime = ReplicationRuntime(volume: try setup(disk: disk, memory: memory, seed: 3),
                                         transport: InMemoryTransportPair().transport(0), name: "stuck")
        #expect(throws: Never.self) { try runtime.admin { $0.promote(force: true) }.get() }
        disk.close()
        let outcomes = Outcomes()
        runtime.submit(.write(offset: 0, data: [UInt8](repeating: 5, count: 1 << 20))) { outcomes.record($0) }
        #expect(waitUntil(5) { runtime.snapshot.local == 1 })
        let report = runtime.shutdown(timeout: 0.3)
        #expect(!report.drained)
        #expect(report.problems.contains { $0.contains("still in flight") }, "\(report.problems)")
        let metadata = try MetadataDevice.internalMetadata(memory, name: "mem")
        let superblock = try metadata.readSuperblock()
        #expect(superblock.magic == Superblock.magicV08Unclean, "the meta-data was marked clean with a write in flight")
        #expect(!superblock.flags.contains(.activityLogClean))
        disk.release()
        #expect(waitUntil(5) { outcomes.done == 1 })
    }

    @Test func downWithNothingInFlightMarksTheMetadataClean() throws {
        let memory = MemoryBlockTarget(size: Self.diskSize)
        let runtime = ReplicationRuntime(volume: try setup(disk: memory, memory: memory, seed: 4),
                                         transport: InMemoryTransportPair().transport(0), name: "clean")
        #expect(throws: Never.self) { try runtime.admin { $0.promote(force: true) }.get() }
        let outcomes = Outcomes()
        runtime.submit(.write(offset: 0, data: [UInt8](repeating: 5, count: 4096))) { outcomes.record($0) }
        #expect(waitUntil(5) { outcomes.done == 1 })
        let report = runtime.shutdown(timeout: 5)
        #expect(report.drained)
        #expect(report.problems.isEmpty, "\(report.problems)")
        let superblock = try MetadataDevice.internalMetadata(memory, name: "mem").readSuperblock()
        #expect(superblock.magic == Superblock.magicV08 && superblock.flags.contains(.activityLogClean))
    }
}
