import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Generation UUID comparison")
struct UUIDComparisonTests {
    func u(_ current: UInt64, _ bitmap: UInt64 = 0, _ h1: UInt64 = 0, _ h2: UInt64 = 0) -> GenerationUUIDs {
        GenerationUUIDs(current: current, bitmap: bitmap, historyStart: h1, historyEnd: h2)
    }

    func compare(_ local: GenerationUUIDs, _ peer: GenerationUUIDs, configure: (inout UUIDHandshakeInput) -> Void = { _ in }) -> UUIDComparison {
        var input = UUIDHandshakeInput(local: local, peer: peer)
        configure(&input)
        return UUIDComparison.compare(input)
    }

    @Test(arguments: [
        // (local, peer, hg, rule)
        ("both just created", [4, 0, 0, 0], [4, 0, 0, 0], 0, 10),
        ("I am just created", [4, 0, 0, 0], [0xA0, 0, 0, 0], -2, 20),
        ("I have no data (0)", [0, 0, 0, 0], [0xA0, 0, 0, 0], -2, 20),
        ("peer just created", [0xA0, 4, 0, 0], [4, 0, 0, 0], 2, 30),
        ("same generation, only I track changes", [0xA0, 0x90, 0, 0], [0xA0, 0, 0, 0], 1, 36),
        ("same generation, I missed resync-finished", [0xA0, 0x90, 0x80, 0], [0xA0, 0, 0x90, 0x80], 1, 34),
        ("same generation, only peer tracks changes", [0xA0, 0, 0, 0], [0xA0, 0x90, 0, 0], -1, 37),
        ("same generation, peer missed resync-finished", [0xA0, 0, 0x90, 0x80], [0xA0, 0x90, 0x80, 0], -1, 35),
        ("plain reconnect", [0xA0, 0x90, 0, 0], [0xA1, 0x90, 0, 0], 0, 40),
        ("peer wrote while apart", [0xA0, 0, 0, 0], [0xB0, 0xA0, 0, 0], -1, 50),
        ("peer started resync, sync UUID lost", [0xA0, 0, 0x70, 0], [0xB0, 0xA0 &+ 0x0001_0000_0000_0000, 0xA0, 0x70], -1, 51),
        ("peer several generations ahead", [0xA0, 0, 0, 0], [0xC0, 0xB0, 0x70, 0xA0], -2, 60),
        ("I wrote while apart", [0xB0, 0xA0, 0, 0], [0xA0, 0, 0, 0], 1, 70),
        ("I started resync, sync UUID lost", [0xB0, 0xA0 &+ 0x0001_0000_0000_0000, 0xA0, 0x70], [0xA0, 0, 0x70, 0], 1, 71),
        ("I am several generations ahead", [0xC0, 0xB0, 0x70, 0xA0], [0xA0, 0, 0, 0], 2, 80),
        ("both wrote since the same generation", [0xB0, 0xA0, 0, 0], [0xC0, 0xA0, 0, 0], 100, 90),
        ("related only through history", [0xB0, 0xE0, 0x70, 0], [0xC0, 0xD0, 0x70, 0], -100, 100),
        ("unrelated data", [0xB0, 0xE0, 0x60, 0], [0xC0, 0xD0, 0x70, 0], -1000, 0),
    ] as [(String, [UInt64], [UInt64], Int, Int)])
    func rulesOfTheReferenceTable(name: String, local: [UInt64], peer: [UInt64], hg: Int, rule: Int) {
        let result = compare(u(local[0], local[1], local[2], local[3]), u(peer[0], peer[1], peer[2], peer[3]))
        #expect(result.handshake == hg, "\(name)")
        #expect(result.rule == rule, "\(name)")
    }

    @Test func roleBitIsMaskedOff() {
        #expect(compare(u(0xA1, 0x91), u(0xA0, 0x90)).handshake == 0)
        #expect(compare(u(0xB1, 0xA1), u(0xA0)).rule == 70)
    }

    @Test func rule34And35CorrectTheUUIDs() {
        let r34 = compare(u(0xA0, 0x90, 0x80, 0), u(0xA0, 0, 0x90, 0x80))
        #expect(r34.correctedLocal == u(0xA0, 0, 0x90, 0x80))
        let r35 = compare(u(0xA0, 0, 0x90, 0x80), u(0xA0, 0x90, 0x80, 0))
        #expect(r35.correctedPeer == u(0xA0, 0, 0x90, 0x80))
    }

    @Test func rule51And71UndoTheInterruptedResyncStart() {
        let offset = GenerationUUIDs.newBitmapOffset
        let r51 = compare(u(0xA0, 0, 0x70, 0), u(0xB0, 0xA0 &+ offset, 0xA0, 0x70))
        #expect(r51.correctedPeer.bitmap == 0xA0)
        let r71 = compare(u(0xB0, 0xA0 &+ offset, 0xA0, 0x70), u(0xA0, 0, 0x70, 0))
        #expect(r71.correctedLocal.bitmap == 0xA0 && r71.correctedLocal.historyStart == 0x70)
    }

    /// A Primary SyncSource that loses its target starts a new generation (Replica, beyond
    /// DRBD 8.4): source (X, S) becomes (Z, X, [S, …]). The three things the target can be.
    @Test func primarySourceLosingItsTargetMidResync() {
        var source = u(0xA0, 0x50, 0x30, 0)  // current X = A0, sync UUID S = 50
        source.clearBitmapUUID()
        source.newCurrent(random: 0xF0, primary: true)
        #expect(source == u(0xF1, 0xA0, 0x50, 0x30))
        // 1. The target never finished: Inconsistent on S. The resync resumes from the bitmap.
        let interrupted = u(0x50, 0, 0x30, 0)
        let r52 = compare(interrupted, source) { $0.localInconsistent = true }
        #expect(r52.handshake == -1 && r52.rule == 52)
        let r72 = compare(source, interrupted) { $0.peerInconsistent = true }
        #expect(r72.handshake == 1 && r72.rule == 72)
        // Without the Inconsistent flag the rule does not apply (DRBD's rule 60: full sync).
        #expect(compare(interrupted, source).rule == 60)
        // 2. The target finished unseen (it took X, S went to its history): a bitmap resync.
        let finished = u(0xA0, 0, 0x50, 0x30)
        #expect(compare(source, finished).handshake == 1 && compare(source, finished).rule == 70)
        #expect(compare(finished, source).handshake == -1 && compare(finished, source).rule == 50)
        // 3. It finished unseen and was promoted while apart: a split brain, not a resync.
        var promoted = finished
        promoted.newCurrent(random: 0xE0, primary: true)
        #expect(compare(source, promoted).handshake == 100 && compare(source, promoted).rule == 90)
        #expect(compare(promoted, source).handshake == 100)
    }

    @Test func rule40CrashedPrimaries() {
        let same = (u(0xA0, 0x90), u(0xA0, 0x90))
        #expect(compare(same.0, same.1) { $0.localCrashedPrimary = true }.handshake == 1)
        #expect(compare(same.0, same.1) { $0.peerCrashedPrimary = true }.handshake == -1)
        #expect(compare(same.0, same.1) { $0.localCrashedPrimary = true; $0.peerCrashedPrimary = true; $0.resolveConflicts = true }.handshake == -1)
        #expect(compare(same.0, same.1) { $0.localCrashedPrimary = true; $0.peerCrashedPrimary = true }.handshake == 1)
        // A current Primary becomes the source after a crash (rule 41); two Primaries: split brain.
        #expect(compare(same.0, same.1) { $0.peerCrashedPrimary = true; $0.localRole = .primary }.handshake == 1)
        #expect(compare(same.0, same.1) { $0.localRole = .primary; $0.peerRole = .primary }.handshake == -100)
    }

    @Test func oldProtocolsGetTheirCodes() {
        #expect(compare(u(0xA0, 0x90), u(0xA0)) { $0.protocolVersion = 90 }.handshake == -1091)
    }

    @Test func uuidHelpers() {
        var uuids = GenerationUUIDs.justCreated
        uuids.newCurrent(random: 0x1234_5678_9ABC_DEF0, primary: true)
        #expect(uuids.current == 0x1234_5678_9ABC_DEF1 && uuids.bitmap == 4)
        uuids.clearBitmapUUID()
        #expect(uuids.bitmap == 0 && uuids.historyStart == 4)
        uuids.setRoleBit(primary: false)
        #expect(uuids.current & 1 == 0)
    }
}

@Suite("Split-brain policies")
struct SplitBrainTests {
    func input(localPrimaryAtSplit: Bool = false, peerPrimaryAtSplit: Bool = false, local: UInt64 = 5, peer: UInt64 = 9,
               localRole: Role = .secondary, peerRole: Role = .secondary, resolve: Bool = false) -> SplitBrainInput {
        SplitBrainInput(localWasPrimaryAtSplit: localPrimaryAtSplit, peerWasPrimaryAtSplit: peerPrimaryAtSplit,
                        localChanges: local, peerChanges: peer, localRole: localRole, peerRole: peerRole, resolveConflicts: resolve)
    }

    @Test func afterSB0PriEveryValue() {
        #expect(SplitBrainRecovery.zeroPrimaries(.disconnect, input()) == .noDecision)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardLocal, input()) == .discardLocal)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardRemote, input()) == .discardPeer)
        // Younger primary = the one that was not Primary at the split.
        #expect(SplitBrainRecovery.zeroPrimaries(.discardYoungerPrimary, input(localPrimaryAtSplit: true)) == .discardPeer)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardYoungerPrimary, input(peerPrimaryAtSplit: true)) == .discardLocal)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardOlderPrimary, input(localPrimaryAtSplit: true)) == .discardLocal)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardOlderPrimary, input(peerPrimaryAtSplit: true)) == .discardPeer)
        // Equal: falls through to least changes.
        #expect(SplitBrainRecovery.zeroPrimaries(.discardYoungerPrimary, input(local: 1, peer: 2)) == .discardLocal)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardZeroChanges, input(local: 0, peer: 3)) == .discardLocal)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardZeroChanges, input(local: 3, peer: 0)) == .discardPeer)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardZeroChanges, input(local: 0, peer: 0, resolve: true)) == .discardLocal)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardZeroChanges, input(local: 0, peer: 0, resolve: false)) == .discardPeer)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardZeroChanges, input(local: 3, peer: 4)) == .noDecision)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardLeastChanges, input(local: 3, peer: 4)) == .discardLocal)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardLeastChanges, input(local: 5, peer: 4)) == .discardPeer)
        #expect(SplitBrainRecovery.zeroPrimaries(.discardLeastChanges, input(local: 4, peer: 4, resolve: true)) == .discardLocal)
        #expect(AfterSplitBrain0Pri.allCases.count == 7)
    }

    @Test func afterSB1PriEveryValue() {
        let localPrimary = input(local: 9, peer: 5, localRole: .primary)
        let peerPrimary = input(local: 3, peer: 9, peerRole: .primary)
        #expect(SplitBrainRecovery.onePrimary(.disconnect, fallback: .discardLeastChanges, peerPrimary) == .noDecision)
        // consensus: accept only when the victim is the Secondary.
        #expect(SplitBrainRecovery.onePrimary(.consensus, fallback: .discardLeastChanges, peerPrimary) == .discardLocal)
        #expect(SplitBrainRecovery.onePrimary(.consensus, fallback: .discardLeastChanges, input(local: 3, peer: 9, localRole: .primary)) == .noDecision)
        #expect(SplitBrainRecovery.onePrimary(.violentlyAs0p, fallback: .discardLeastChanges, input(local: 3, peer: 9, localRole: .primary)) == .discardLocal)
        #expect(SplitBrainRecovery.onePrimary(.discardSecondary, fallback: .disconnect, localPrimary) == .discardPeer)
        #expect(SplitBrainRecovery.onePrimary(.discardSecondary, fallback: .disconnect, peerPrimary) == .discardLocal)
        #expect(SplitBrainRecovery.onePrimary(.callPriLostAfterSB, fallback: .discardLeastChanges, input(local: 3, peer: 9, localRole: .primary)) == .demoteLocalThenDiscard)
        #expect(SplitBrainRecovery.onePrimary(.callPriLostAfterSB, fallback: .discardLeastChanges, localPrimary) == .discardPeer)
        #expect(AfterSplitBrain1Pri.allCases.count == 5)
    }

    @Test func afterSB2PriEveryValue() {
        let both = input(local: 3, peer: 9, localRole: .primary, peerRole: .primary)
        #expect(SplitBrainRecovery.twoPrimaries(.disconnect, fallback: .discardLeastChanges, both) == .noDecision)
        #expect(SplitBrainRecovery.twoPrimaries(.violentlyAs0p, fallback: .discardLeastChanges, both) == .discardLocal)
        #expect(SplitBrainRecovery.twoPrimaries(.callPriLostAfterSB, fallback: .discardLeastChanges, both) == .demoteLocalThenDiscard)
        #expect(SplitBrainRecovery.twoPrimaries(.callPriLostAfterSB, fallback: .discardLeastChanges, input(local: 9, peer: 3, localRole: .primary, peerRole: .primary)) == .discardPeer)
        #expect(AfterSplitBrain2Pri.allCases.count == 3)
    }
}

@Suite("Sync handshake")
struct SyncHandshakeTests {
    func context(_ disk: DiskState = .upToDate, _ peerDisk: DiskState = .upToDate, local: UInt64 = 5, peer: UInt64 = 9) -> SyncHandshakeContext {
        SyncHandshakeContext(localDisk: disk, peerDisk: peerDisk, splitBrain: SplitBrainInput(
            localWasPrimaryAtSplit: false, peerWasPrimaryAtSplit: false, localChanges: local, peerChanges: peer,
            localRole: .secondary, peerRole: .secondary, resolveConflicts: false))
    }

    let splitBrain = UUIDHandshakeInput(local: GenerationUUIDs(current: 0xB0, bitmap: 0xA0), peer: GenerationUUIDs(current: 0xC0, bitmap: 0xA0))

    @Test func plainOutcomes() {
        let fresh = UUIDHandshakeInput(local: .justCreated, peer: GenerationUUIDs(current: 0xA0))
        #expect(SyncHandshake.decide(fresh, context(.inconsistent, .upToDate)).decision == .syncTarget(full: true))
        let same = UUIDHandshakeInput(local: GenerationUUIDs(current: 0xA0), peer: GenerationUUIDs(current: 0xA0))
        #expect(SyncHandshake.decide(same, context()).decision == .noSync)
        let ahead = UUIDHandshakeInput(local: GenerationUUIDs(current: 0xB0, bitmap: 0xA0), peer: GenerationUUIDs(current: 0xA0))
        #expect(SyncHandshake.decide(ahead, context()).decision == .syncSource(full: false))
    }

    @Test func unresolvedSplitBrainDisconnects() {
        let result = SyncHandshake.decide(splitBrain, context())
        #expect(result.decision == .disconnect(.splitBrain))
        #expect(result.splitBrainDetected && !result.automaticallyResolved)
    }

    @Test func automaticPolicyResolvesSplitBrain() {
        var ctx = context(local: 0, peer: 4)
        ctx.afterSB0 = .discardZeroChanges
        let result = SyncHandshake.decide(splitBrain, ctx)
        #expect(result.decision == .syncTarget(full: false))
        #expect(result.splitBrainDetected && result.automaticallyResolved)
    }

    @Test func discardMyDataPicksTheVictim() {
        var victim = context()
        victim.discardMyData = true
        #expect(SyncHandshake.decide(splitBrain, victim).decision == .syncTarget(full: false))
        var survivor = context()
        survivor.peerDiscardMyData = true
        #expect(SyncHandshake.decide(splitBrain, survivor).decision == .syncSource(full: false))
        var both = context()
        both.discardMyData = true
        both.peerDiscardMyData = true
        #expect(SyncHandshake.decide(splitBrain, both).decision == .disconnect(.bothDiscardMyData))
    }

    @Test func historyOnlySplitBrainNeedsFullSyncWhenResolved() {
        let history = UUIDHandshakeInput(local: GenerationUUIDs(current: 0xB0, bitmap: 0xE0, historyStart: 0x70), peer: GenerationUUIDs(current: 0xC0, bitmap: 0xD0, historyStart: 0x70))
        var ctx = context()
        ctx.discardMyData = true
        #expect(SyncHandshake.decide(history, ctx).decision == .syncTarget(full: false))
        var asbp = context(local: 1, peer: 2)
        asbp.alwaysASBP = true
        asbp.afterSB0 = .discardLeastChanges
        #expect(SyncHandshake.decide(history, asbp).decision == .syncTarget(full: true))
    }

    @Test func unrelatedDataDisconnects() {
        let unrelated = UUIDHandshakeInput(local: GenerationUUIDs(current: 0xB0, bitmap: 0xE0, historyStart: 0x60), peer: GenerationUUIDs(current: 0xC0, bitmap: 0xD0, historyStart: 0x70))
        #expect(SyncHandshake.decide(unrelated, context()).decision == .disconnect(.unrelatedData))
    }

    @Test func inconsistentSideIsAlwaysTheTarget() {
        let ahead = UUIDHandshakeInput(local: GenerationUUIDs(current: 0xB0, bitmap: 0xA0), peer: GenerationUUIDs(current: 0xA0))
        #expect(SyncHandshake.decide(ahead, context(.inconsistent, .upToDate)).decision == .syncTarget(full: false))
    }

    @Test func primaryWouldBecomeTargetFollowsRRConflict() {
        var input = UUIDHandshakeInput(local: GenerationUUIDs(current: 0xA0), peer: GenerationUUIDs(current: 0xB0, bitmap: 0xA0))
        input.localRole = .primary
        #expect(SyncHandshake.decide(input, context()).decision == .disconnect(.primaryWouldBecomeTarget))
        var violent = context()
        violent.rrConflict = "violently"
        #expect(SyncHandshake.decide(input, violent).decision == .syncTarget(full: false))
    }
}
