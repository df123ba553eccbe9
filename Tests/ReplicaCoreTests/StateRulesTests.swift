import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("State rules")
struct StateRulesTests {
    func state(_ role: Role, _ peer: Role, _ connection: ConnectionState, _ disk: DiskState, _ peerDisk: DiskState) -> ResourceState {
        ResourceState(role: role, peerRole: peer, connection: connection, disk: disk, peerDisk: peerDisk)
    }

    @Test func enumerationsCarryDrbdNumbersAndNames() {
        #expect(ConnectionState.wfConnection.rawValue == 8 && ConnectionState.behind.rawValue == 23)
        #expect(DiskState.upToDate.rawValue == 8 && DiskState.dUnknown.rawValue == 6)
        #expect(Role.secondary.rawValue == 2)
        #expect(ConnectionState(name: "SyncSource") == .syncSource)
        #expect(DiskState(name: "UpToDate") == .upToDate)
        #expect(state(.primary, .secondary, .connected, .upToDate, .upToDate).description == "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate")
    }

    @Test func wireEncodingRoundTrips() {
        var s = state(.primary, .secondary, .syncSource, .upToDate, .inconsistent)
        s.userSyncPause = true
        #expect(s.wireValue == 1 | 2 << 2 | 16 << 4 | 8 << 9 | 4 << 13 | 1 << 20)
        #expect(ResourceState(wireValue: s.wireValue) == s)
        #expect(ResourceState(wireValue: 15 << 9) == nil)
    }

    @Test(arguments: [
        // rule 1
        (Role.primary, Role.primary, ConnectionState.connected, DiskState.upToDate, DiskState.upToDate, false, "dont-care", false, StateChangeError?.some(.twoPrimaries)),
        (.primary, .primary, .connected, .upToDate, .upToDate, true, "dont-care", false, nil),
        // rule 2
        (.secondary, .unknown, .standAlone, .upToDate, .dUnknown, false, "dont-care", true, .deviceInUse),
        // rule 3
        (.primary, .unknown, .standAlone, .consistent, .dUnknown, false, "dont-care", false, .noUpToDateDisk),
        (.primary, .unknown, .wfConnection, .upToDate, .dUnknown, false, "dont-care", false, nil),
        // rule 4
        (.primary, .unknown, .wfConnection, .upToDate, .dUnknown, false, "resource-only", false, .primaryNop),
        (.primary, .unknown, .wfConnection, .upToDate, .outdated, false, "resource-only", false, nil),
        // rule 5
        (.primary, .secondary, .connected, .inconsistent, .inconsistent, false, "dont-care", false, .noUpToDateDisk),
        // rule 6
        (.secondary, .secondary, .syncSource, .diskless, .inconsistent, false, "dont-care", false, .noLocalDisk),
        (.secondary, .secondary, .syncSource, .upToDate, .diskless, false, "dont-care", false, .noRemoteDisk),
        (.secondary, .secondary, .syncTarget, .inconsistent, .inconsistent, false, "dont-care", false, .noUpToDateDisk),
        // rule 7
        (.secondary, .secondary, .connected, .outdated, .upToDate, false, "dont-care", false, .connectedOutdates),
        (.secondary, .secondary, .syncTarget, .outdated, .upToDate, false, "dont-care", false, nil),
        // rule 9 (diskless primary allowed only with an UpToDate peer)
        (.primary, .secondary, .connected, .diskless, .upToDate, false, "dont-care", false, nil),
        (.primary, .secondary, .connected, .diskless, .consistent, false, "dont-care", false, .noUpToDateDisk),
        // rule 10
        (.secondary, .secondary, .startingSyncS, .upToDate, .dUnknown, false, "dont-care", false, .needConnection),
        (.secondary, .secondary, .connected, .upToDate, .dUnknown, false, "dont-care", false, .connectedOutdates),
        // valid everyday states
        (.primary, .secondary, .connected, .upToDate, .upToDate, false, "dont-care", false, nil),
        (.secondary, .unknown, .standAlone, .inconsistent, .dUnknown, false, "dont-care", false, nil),
    ] as [(Role, Role, ConnectionState, DiskState, DiskState, Bool, String, Bool, StateChangeError?)])
    func invariants(role: Role, peer: Role, connection: ConnectionState, disk: DiskState, peerDisk: DiskState,
                    twoPrimaries: Bool, fencing: String, open: Bool, expected: StateChangeError?) {
        var context = StateRuleContext()
        context.allowTwoPrimaries = twoPrimaries
        context.fencing = fencing
        context.deviceOpen = open
        #expect(StateRules.validate(state(role, peer, connection, disk, peerDisk), context) == expected)
    }

    @Test func verifyNeedsAlgorithmAndProtocol() {
        var context = StateRuleContext()
        let verifying = state(.secondary, .secondary, .verifyS, .upToDate, .upToDate)
        #expect(StateRules.validate(verifying, context) == .noVerifyAlgorithm)
        context.hasVerifyAlgorithm = true
        context.peerProtocolVersion = 87
        #expect(StateRules.validate(verifying, context) == .notSupported)
        context.peerProtocolVersion = 101
        #expect(StateRules.validate(verifying, context) == nil)
    }

    @Test func startingSyncWithUnknownPeerNeedsConnection() {
        // Rule 10 proper: a StartingSync state whose peer disk is unknown.
        var context = StateRuleContext()
        context.allowTwoPrimaries = false
        let s = state(.secondary, .secondary, .startingSyncT, .upToDate, .upToDate)
        #expect(StateRules.validate(s, context) == nil)
        let bad = state(.secondary, .secondary, .startingSyncT, .upToDate, .dUnknown)
        #expect(StateRules.validate(bad, context) == .needConnection)
    }

    @Test func connectionTransitions() {
        #expect(StateRules.validateConnectionTransition(from: .standAlone, to: .unconnected) == nil)
        #expect(StateRules.validateConnectionTransition(from: .standAlone, to: .connected) != nil)
        #expect(StateRules.validateConnectionTransition(from: .wfConnection, to: .connected) != nil)
        #expect(StateRules.validateConnectionTransition(from: .wfReportParams, to: .connected) == nil)
        #expect(StateRules.validateConnectionTransition(from: .networkFailure, to: .unconnected) == nil)
        #expect(StateRules.validateConnectionTransition(from: .networkFailure, to: .connected) == .needConnection)
        #expect(StateRules.validateConnectionTransition(from: .networkFailure, to: .wfConnection) == .inTransientState)
        #expect(StateRules.validateConnectionTransition(from: .standAlone, to: .disconnecting) == .alreadyStandAlone)
        #expect(StateRules.validateConnectionTransition(from: .disconnecting, to: .standAlone) == nil)
        #expect(StateRules.validateConnectionTransition(from: .disconnecting, to: .unconnected) == .inTransientState)
    }

    @Test func softTransitions() {
        let context = StateRuleContext()
        let syncing = state(.primary, .secondary, .syncSource, .upToDate, .inconsistent)
        var restart = syncing
        restart.connection = .startingSyncS
        #expect(StateRules.validateChange(from: syncing, to: restart, context) == .resyncRunning)
        let alone = state(.secondary, .unknown, .standAlone, .upToDate, .dUnknown)
        var disconnecting = alone
        disconnecting.connection = .disconnecting
        #expect(StateRules.validateChange(from: alone, to: disconnecting, context) == .alreadyStandAlone)
        let inconsistent = state(.secondary, .unknown, .standAlone, .inconsistent, .dUnknown)
        var outdated = inconsistent
        outdated.disk = .outdated
        #expect(StateRules.validateChange(from: inconsistent, to: outdated, context) == .lowerThanOutdated)
    }

    @Test func promotionNeedsUpToDateDataUnlessForced() throws {
        let context = StateRuleContext()
        let fresh = state(.secondary, .unknown, .standAlone, .inconsistent, .dUnknown)
        #expect(StateRules.promote(fresh, force: false, context) == .failure(.noUpToDateDisk))
        let forced = try StateRules.promote(fresh, force: true, context).get()
        #expect(forced.role == .primary && forced.disk == .upToDate)
        let diskless = state(.secondary, .unknown, .standAlone, .diskless, .dUnknown)
        #expect(StateRules.promote(diskless, force: true, context) == .failure(.noUpToDateDisk))
        let peerPrimary = state(.secondary, .primary, .connected, .upToDate, .upToDate)
        #expect(StateRules.promote(peerPrimary, force: true, context) == .failure(.twoPrimaries))
    }

    @Test func fencedPromotionForcedIntoSplitBrain() throws {
        var context = StateRuleContext()
        context.fencing = "resource-only"
        let alone = state(.secondary, .unknown, .wfConnection, .upToDate, .dUnknown)
        #expect(StateRules.promote(alone, force: false, context) == .failure(.primaryNop))
        let forced = try StateRules.promote(alone, force: true, context).get()
        #expect(forced.peerDisk == .outdated)
    }

    @Test func demotionRefusedWhileOpen() {
        var context = StateRuleContext()
        context.deviceOpen = true
        #expect(StateRules.demote(state(.primary, .secondary, .connected, .upToDate, .upToDate), context) == .failure(.deviceInUse))
    }

    @Test func sanitizeAppliesImplicitConsequences() {
        let lost = StateRules.sanitize(state(.primary, .secondary, .wfConnection, .upToDate, .upToDate))
        #expect(lost.peerRole == .unknown && lost.peerDisk == .dUnknown)
        let keepOutdated = StateRules.sanitize(state(.primary, .secondary, .wfConnection, .upToDate, .outdated))
        #expect(keepOutdated.peerDisk == .outdated)
        let connected = StateRules.sanitize(state(.secondary, .secondary, .connected, .consistent, .outdated))
        #expect(connected.disk == .upToDate && connected.peerDisk == .upToDate)
        let target = StateRules.sanitize(state(.secondary, .primary, .syncTarget, .outdated, .consistent))
        #expect(target.disk == .inconsistent && target.peerDisk == .upToDate)
        var paused = state(.primary, .secondary, .syncSource, .upToDate, .inconsistent)
        paused.userSyncPause = true
        #expect(StateRules.sanitize(paused).connection == .pausedSyncS)
        let failedDisk = StateRules.sanitize(state(.primary, .secondary, .syncSource, .upToDate, .failed))
        #expect(failedDisk.connection == .connected)
    }

    @Test func everyRefusalHasCodeMessageAndRule() {
        for error in StateChangeError.allCases {
            #expect(error.code < 0)
            #expect(!error.description.isEmpty && !error.rule.isEmpty)
        }
        #expect(StateChangeError.noUpToDateDisk.description == "Need access to UpToDate data")
        #expect(StateChangeError.deviceInUse.description == "Device is held open by someone")
    }
}
