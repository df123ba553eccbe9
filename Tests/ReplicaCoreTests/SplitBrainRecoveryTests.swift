import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

/// Every after-sb policy value on a split brain produced on the in-memory runtime: the nodes
/// apart, both Primary and writing, the roles at reconnect set, then connected. The expected
/// victim's writes are overwritten by the survivor's data; undecided cases end StandAlone.
@Suite("Split-brain recovery policies")
struct SplitBrainRecoveryTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var sb0: AfterSplitBrain0Pri = .disconnect
        var sb1: AfterSplitBrain1Pri = .disconnect
        var sb2: AfterSplitBrain2Pri = .disconnect
        /// Per-node 0pri override (discard-local on one side, discard-remote on the other).
        var node1SB0: AfterSplitBrain0Pri?
        var rrConflict = "disconnect"
        var allowTwoPrimaries = false
        var writes: (Int, Int)
        var primaryAtReconnect: (Bool, Bool)
        /// The node whose changes are discarded, or nil: unresolved.
        var victim: Int?
        /// Unresolved: which nodes end StandAlone (a refusing Primary alone, for rr-conflict).
        var standAlone = (true, true)
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "0pri disconnect", writes: (2, 2), primaryAtReconnect: (false, false), victim: nil),
        Case(name: "0pri discard-younger-primary", sb0: .discardYoungerPrimary, writes: (2, 2), primaryAtReconnect: (false, false), victim: 1),
        Case(name: "0pri discard-older-primary", sb0: .discardOlderPrimary, writes: (2, 2), primaryAtReconnect: (false, false), victim: 0),
        Case(name: "0pri discard-zero-changes", sb0: .discardZeroChanges, writes: (0, 2), primaryAtReconnect: (false, false), victim: 0),
        Case(name: "0pri discard-zero-changes, both changed", sb0: .discardZeroChanges, writes: (1, 2), primaryAtReconnect: (false, false), victim: nil),
        Case(name: "0pri discard-least-changes", sb0: .discardLeastChanges, writes: (1, 3), primaryAtReconnect: (false, false), victim: 0),
        Case(name: "0pri discard-local / discard-remote", sb0: .discardLocal, node1SB0: .discardRemote, writes: (2, 1), primaryAtReconnect: (false, false), victim: 0),
        Case(name: "1pri disconnect", sb0: .discardLeastChanges, writes: (2, 2), primaryAtReconnect: (true, false), victim: nil),
        Case(name: "1pri consensus (agrees)", sb0: .discardYoungerPrimary, sb1: .consensus, writes: (2, 2), primaryAtReconnect: (true, false), victim: 1),
        Case(name: "1pri consensus (disagrees)", sb0: .discardOlderPrimary, sb1: .consensus, writes: (2, 2), primaryAtReconnect: (true, false), victim: nil),
        Case(name: "1pri discard-secondary", sb1: .discardSecondary, writes: (2, 2), primaryAtReconnect: (true, false), victim: 1),
        Case(name: "1pri call-pri-lost-after-sb", sb0: .discardOlderPrimary, sb1: .callPriLostAfterSB, writes: (2, 2), primaryAtReconnect: (true, false), victim: 0),
        // The victim is the Primary: it refuses to become SyncTarget ("I shall become SyncTarget,
        // but I am primary!") and goes StandAlone; its peer waits for a connection again.
        Case(name: "1pri violently-as0p, rr-conflict disconnect", sb0: .discardOlderPrimary, sb1: .violentlyAs0p, writes: (2, 2), primaryAtReconnect: (true, false),
             victim: nil, standAlone: (true, false)),
        Case(name: "1pri violently-as0p, rr-conflict violently", sb0: .discardOlderPrimary, sb1: .violentlyAs0p, rrConflict: "violently", writes: (2, 2), primaryAtReconnect: (true, false), victim: 0),
        Case(name: "2pri disconnect", sb0: .discardLeastChanges, writes: (3, 1), primaryAtReconnect: (true, true), victim: nil),
        Case(name: "2pri call-pri-lost-after-sb", sb0: .discardLeastChanges, sb2: .callPriLostAfterSB, writes: (3, 1), primaryAtReconnect: (true, true), victim: 1),
        Case(name: "2pri violently-as0p (allow-two-primaries)", sb0: .discardLeastChanges, sb2: .violentlyAs0p, rrConflict: "violently", allowTwoPrimaries: true,
             writes: (3, 1), primaryAtReconnect: (true, true), victim: 1),
    ]

    func block(_ node: Int, _ index: Int) -> [UInt8] { [UInt8](repeating: UInt8(0x10 * (node + 1) + index), count: 4096) }

    @Test(arguments: cases)
    func policy(_ c: Case) throws {
        var configuration = EngineConfiguration()
        configuration.afterSB0 = c.sb0
        configuration.afterSB1 = c.sb1
        configuration.afterSB2 = c.sb2
        configuration.rrConflict = c.rrConflict
        configuration.allowTwoPrimaries = c.allowTwoPrimaries
        var pair = try InMemoryCluster.primaryPair(configuration: configuration, seed: 11) { pair in
            if let sb0 = c.node1SB0 { pair.modifyEngine(1) { $0.configuration.afterSB0 = sb0 } }
        }
        // Apart: node0 (Primary) and node1 (promoted) both write, at different places.
        try pair.disconnect()
        var id: RequestID = 100
        for index in 0..<c.writes.0 {
            try pair.request(0, id, .write(offset: Int64(index) * 65536, data: block(0, index)))
            id += 1
        }
        #expect(try pair.admin(1) { $0.promote(force: false) } == nil)
        for index in 0..<c.writes.1 {
            try pair.request(1, id, .write(offset: Int64(index) * 65536 + 32768, data: block(1, index)))
            id += 1
        }
        try pair.run()
        if !c.primaryAtReconnect.0 { #expect(try pair.admin(0) { $0.demote() } == nil) }
        if !c.primaryAtReconnect.1 { #expect(try pair.admin(1) { $0.demote() } == nil) }
        try pair.connect()
        try pair.run()
        let states = (pair.nodes[0].engine.state, pair.nodes[1].engine.state)
        #expect(pair.nodes[0].log.contains { $0.hasPrefix("Split-Brain detected") }, "\(c.name): not detected")
        guard let victim = c.victim else {
            #expect((states.0.connection == .standAlone) == c.standAlone.0 && (states.1.connection == .standAlone) == c.standAlone.1,
                    "\(c.name): \(states.0) / \(states.1)")
            #expect(states.0.connection < .connected && states.1.connection < .connected, "\(c.name): connected after an unresolved split brain")
            return
        }
        #expect(states.0.connection == .connected && states.0.disk == .upToDate && states.0.peerDisk == .upToDate, "\(c.name): \(states.0)")
        #expect(try pair.data(0) == pair.data(1), "\(c.name): data differs after the resync")
        let survivor = 1 - victim
        let writes = [c.writes.0, c.writes.1]
        let data = try pair.data(0)
        for index in 0..<writes[survivor] {
            let offset = index * 65536 + (survivor == 1 ? 32768 : 0)
            #expect(Array(data[offset..<(offset + 4096)]) == block(survivor, index), "\(c.name): the survivor's write \(index) is missing")
        }
        for index in 0..<writes[victim] {
            let offset = index * 65536 + (victim == 1 ? 32768 : 0)
            #expect(Array(data[offset..<(offset + 4096)]) != block(victim, index), "\(c.name): the victim's write \(index) survived")
        }
        if c.sb1 == .callPriLostAfterSB || c.sb2 == .callPriLostAfterSB {
            #expect(pair.nodes[victim].log.contains("handler: pri-lost-after-sb"), "\(c.name): handler not called")
            #expect(pair.nodes[victim].engine.state.role == .secondary, "\(c.name): the victim Primary was not demoted")
        }
    }
}
