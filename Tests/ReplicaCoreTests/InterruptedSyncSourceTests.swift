import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// A Secondary SyncSource that loses its target and is promoted apart: whether the target
/// finished the resync unseen (a split brain if it was promoted too) or not (the resync resumes).
@Suite("Interrupted SyncSource promoted apart")
struct InterruptedSyncSourceTests {
    func block(_ value: UInt8) -> [UInt8] { [UInt8](repeating: value, count: 4096) }

    /// Node 0 holds 4 MiB of data, forced Primary then demoted: a full sync runs with node 0 as
    /// a Secondary SyncSource. `targetFinishes`: node 0 hears nothing on its meta channel, so
    /// node 1 finishes the resync unseen; otherwise node 1's disk I/O is held mid-sync. The link
    /// then breaks.
    func interruptedSecondarySource(targetFinishes: Bool) throws -> InMemoryCluster {
        var pair = try InMemoryCluster(diskSize: 16 << 20, configuration: EngineConfiguration(), seed: 3)
        try pair.preload(node: 0, offset: 0, bytes: [UInt8]((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }))
        try pair.connect()
        try pair.run()
        if targetFinishes { pair.pausedChannels[0] = [.meta] } else { pair.setHoldIO(1, true) }
        #expect(try pair.admin(0) { $0.promote(force: true) } == nil)
        #expect(try pair.admin(0) { $0.demote() } == nil)
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .syncSource)
        #expect(pair.nodes[0].engine.state.role == .secondary)
        #expect((pair.nodes[1].engine.state.disk == .upToDate) == targetFinishes)
        try pair.disconnect()
        pair.pausedChannels[0] = []
        pair.setHoldIO(1, false)
        try pair.run()
        return pair
    }

    @Test func bothPromotedApartAfterTheTargetFinishedUnseenIsASplitBrain() throws {
        // Regression (simulator seed 12031): node 0's bitmap UUID was still the sync UUID, so its
        // promotion apart started no new generation and the two Primaries' writes met as a
        // bitmap resync: node 1's writes were overwritten without a split brain being seen.
        var pair = try interruptedSecondarySource(targetFinishes: true)
        #expect(try pair.admin(1) { $0.promote(force: false) } == nil)
        try pair.request(1, 1, .write(offset: 0, data: block(0xB1)))
        #expect(try pair.admin(0) { $0.promote(force: false) } == nil)
        try pair.request(0, 2, .write(offset: 65536, data: block(0xA0)))
        try pair.run()
        try pair.connect()
        try pair.run()
        for node in 0..<2 {
            #expect(pair.nodes[node].log.contains { $0.hasPrefix("Split-Brain detected") }, "node \(node): not detected")
            #expect(pair.nodes[node].engine.state.connection < .connected, "node \(node): \(pair.nodes[node].engine.state)")
        }
        #expect(Array(try pair.data(1)[0..<4096]) == block(0xB1), "node 1's write was overwritten")
        #expect(Array(try pair.data(0)[65536..<(65536 + 4096)]) == block(0xA0), "node 0's write was overwritten")
    }

    @Test func aSourcePromotedApartFromAnUnfinishedTargetResumesTheResync() throws {
        // The other side of that fix: the target did not finish, so node 0 promoted apart is the
        // only one with UpToDate data; on reconnect it must still resync node 1 — the rest of the
        // interrupted sync and its own writes apart — and not refuse it.
        var pair = try interruptedSecondarySource(targetFinishes: false)
        #expect(pair.nodes[1].engine.state.disk == .inconsistent)
        #expect(try pair.admin(0) { $0.promote(force: false) } == nil)
        try pair.request(0, 2, .write(offset: 65536, data: block(0xA0)))
        try pair.run()
        try pair.connect()
        try pair.run()
        let states = (pair.nodes[0].engine.state, pair.nodes[1].engine.state)
        #expect(states.0.connection == .connected && states.0.disk == .upToDate && states.0.peerDisk == .upToDate, "\(states.0)")
        #expect(states.1.disk == .upToDate, "\(states.1)")
        #expect(!pair.nodes[0].log.contains { $0.hasPrefix("Split-Brain detected") })
        #expect(try pair.data(0) == pair.data(1))
    }
}
