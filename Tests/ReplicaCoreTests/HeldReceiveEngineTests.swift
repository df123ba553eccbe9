import Foundation
import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// The engine's side of blocks received apart from their frame (``EngineEvent/heldFrame(_:_:)``,
/// as the TCP transport delivers large blocks spliced into pipes): written with
/// ``LocalIO/writeHeld(offset:data:)``, kept with their frame behind a barrier. (A full sync
/// with blocks received held: `SplicedReadTests`.)
@Suite("Blocks received held")
struct HeldReceiveEngineTests {
    static let diskSize: Int64 = 8 << 20

    @Test func heldWritesWaitWithTheirFramesBehindABarrier() throws {
        // Protocol A: each write completes on the Primary alone, so each starts an epoch behind
        // a barrier. The Secondary's disk holds its writes: the first epoch's barrier cannot
        // be acked, and the writes of later epochs must wait behind it, held data and all.
        var configuration = EngineConfiguration()
        configuration.wireProtocol = "A"
        var pair = try InMemoryCluster.primaryPair(diskSize: Self.diskSize, configuration: configuration)
        pair.holdsReceivedBlocks = true
        pair.setHoldIO(1, true)
        for id in RequestID(1)...12 {
            try pair.request(0, id, .write(offset: Int64(id) * 65_536, data: pattern(16_384, seed: id)))
            try pair.run()
        }
        #expect(pair.nodes[0].completions.count == 12)
        #expect(pair.nodes[1].heldReceives == 12)
        let submitted = pair.nodes[1].pendingIO.filter { $0.1.operation == .write }.count
        #expect(submitted == 1, "writes of later epochs went to the disk before the first epoch's barrier (\(submitted) writes submitted)")
        pair.setHoldIO(1, false)
        try pair.run()
        let equal = try pair.data(0) == pair.data(1)
        #expect(equal, "the disks differ")
    }

    @Test func heldDataOnAFrameThatCarriesNoneBreaksTheProtocol() throws {
        let pair = try InMemoryCluster.primaryPair(diskSize: Self.diskSize)
        var secondary = pair.nodes[1].engine
        let effects = secondary.handle(.heldFrame(.ping, HeldData(id: 1, count: 3)))
        #expect(effects.contains { effect in
            if case .closeConnection(let reason, false) = effect { return reason.hasPrefix("protocol error") }
            return false
        }, "\(effects)")
    }
}
