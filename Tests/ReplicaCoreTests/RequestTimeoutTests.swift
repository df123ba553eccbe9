import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Request timeout (timeout × ko-count)")
struct RequestTimeoutTests {
    func pair(koCount: Int) throws -> InMemoryCluster {
        var configuration = EngineConfiguration()
        configuration.koCount = koCount
        return try InMemoryCluster.primaryPair(configuration: configuration, seed: 7)
    }

    @Test func aPeerThatAnswersPingsButNeverWritesIsDroppedAfterKoCountTimeouts() throws {
        var pair = try pair(koCount: 7)
        pair.setHoldIO(1, true)  // the peer's disk hangs; its network stack still answers pings
        try pair.request(0, 1, .write(offset: 4096, data: [UInt8](repeating: 7, count: 4096)))
        try pair.run()
        for round in 1...6 {
            try pair.fireTimers(0)
            try pair.run()
            #expect(pair.nodes[0].engine.state.connection == .connected, "dropped early, after \(round) timeouts")
        }
        #expect(pair.nodes[1].sentFrames[.pingAck, default: 0] >= 5, "pings were answered")
        try pair.fireTimers(0)
        try pair.run()
        #expect(pair.nodes[0].engine.state.connection == .wfConnection)
        #expect(pair.nodes[0].log.contains { $0.hasPrefix("Remote failed to finish a request within ko-count * timeout") })
        // As /proc/drbd shows it: Timeout, then WFConnection.
        let connections = pair.nodes[0].states.map(\.connection)
        #expect(Array(connections.suffix(2)) == [.timeout, .wfConnection])
        // The write completes locally and is marked for the resync.
        #expect(pair.nodes[0].completions.contains { $0.0 == 1 && (try? $0.1.get()) != nil })
        #expect(pair.nodes[0].engine.bitmap.setCount == 1)
    }

    @Test func koCountZeroNeverDrops() throws {
        var pair = try pair(koCount: 0)
        pair.setHoldIO(1, true)
        try pair.request(0, 1, .write(offset: 4096, data: [UInt8](repeating: 7, count: 4096)))
        try pair.run()
        for _ in 1...20 {
            try pair.fireTimers(0)
            try pair.run()
        }
        #expect(pair.nodes[0].engine.state.connection == .connected)
    }

    @Test func answeredRequestsNeverTimeOut() throws {
        var pair = try pair(koCount: 2)
        for round in 1...10 {
            try pair.request(0, RequestID(round), .write(offset: Int64(round) * 4096, data: [UInt8](repeating: UInt8(round), count: 4096)))
            try pair.run()
            try pair.fireTimers(0)
            try pair.run()
        }
        #expect(pair.nodes[0].engine.state.connection == .connected)
        #expect(try pair.data(0) == pair.data(1))
    }
}

@Suite("Peer write failures")
struct PeerWriteFailureTests {
    /// Found by the simulator (seeds 82 and 141): under protocol A and B a write completes
    /// before the peer has written it, so the peer's negative ack found no pending write and
    /// the block was never marked — the disks differed with no bit to say so.
    @Test(arguments: ["A", "B", "C"])
    func aWriteThatFailsOnThePeerIsMarkedOutOfSync(protocolName: String) throws {
        var configuration = EngineConfiguration()
        configuration.wireProtocol = protocolName
        configuration.onIOError = .passOn  // the peer keeps its disk (detach: DisklessTests)
        var pair = try InMemoryCluster.primaryPair(configuration: configuration, seed: 5)
        pair.nodes[1].disk.injectFailure(in: (1 << 20)..<(2 << 20))
        try pair.request(0, 1, .write(offset: 1 << 20, data: [UInt8](repeating: 9, count: 8192)))
        try pair.run()
        #expect(pair.nodes[0].completions.contains { $0.0 == 1 && (try? $0.1.get()) != nil }, "the local write succeeded")
        #expect(pair.nodes[0].engine.bitmap.setCount == 2, "the Primary marks the 2 blocks its peer failed to write")
        pair.nodes[1].disk.clearFailures()
        // A reconnect resyncs them and the disks are equal again.
        try pair.disconnect()
        try pair.connect()
        try pair.run()
        #expect(pair.nodes[0].engine.bitmap.setCount == 0)
        #expect(try pair.data(0) == pair.data(1))
    }
}
