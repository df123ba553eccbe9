/// What one side knows at the connect handshake to compare generation UUIDs
/// (`drbd_uuid_compare`, reference 3.3).
public struct UUIDHandshakeInput: Sendable, Equatable {
    /// This node's UUIDs.
    public var local: GenerationUUIDs
    /// The peer's UUIDs (from its P_UUIDS).
    public var peer: GenerationUUIDs
    /// This node is a crashed Primary (MDF_CRASHED_PRIMARY).
    public var localCrashedPrimary = false
    /// The peer says it is a crashed Primary (P_UUIDS flag 2).
    public var peerCrashedPrimary = false
    /// This node's current role.
    public var localRole: Role = .secondary
    /// The peer's current role.
    public var peerRole: Role = .secondary
    /// This node holds RESOLVE_CONFLICTS (it accepted the meta connection).
    public var resolveConflicts = false
    /// The agreed protocol version.
    public var protocolVersion = 101
    /// This node's disk is Inconsistent (an interrupted SyncTarget).
    public var localInconsistent = false
    /// The peer says its disk is Inconsistent (P_UUIDS flag 4).
    public var peerInconsistent = false

    /// Creates an input.
    public init(local: GenerationUUIDs, peer: GenerationUUIDs) {
        self.local = local
        self.peer = peer
    }
}

/// The result of comparing UUIDs: DRBD's `hg` value and the rule that decided it.
public struct UUIDComparison: Sendable, Equatable {
    /// Positive: become SyncSource; negative: SyncTarget; ±1 bitmap-based, ±2 full sync,
    /// 0 no sync, ±100 split brain, -1000 unrelated data, -1091/-1096 needs a newer protocol.
    public var handshake: Int
    /// The rule number of the reference table (10 … 100, or 0 for "nothing matched").
    public var rule: Int
    /// This node's UUIDs after the corrections of rules 34 and 71 (else unchanged).
    public var correctedLocal: GenerationUUIDs
    /// The peer's UUIDs after the corrections of rules 35 and 51 (else unchanged).
    public var correctedPeer: GenerationUUIDs

    /// Compares the UUID sets of both sides.
    public static func compare(_ input: UUIDHandshakeInput) -> UUIDComparison {
        var local = input.local
        var peer = input.peer
        func result(_ hg: Int, _ rule: Int) -> UUIDComparison {
            UUIDComparison(handshake: hg, rule: rule, correctedLocal: local, correctedPeer: peer)
        }
        let mask: UInt64 = ~1
        let selfCurrent = local.current & mask, peerCurrent = peer.current & mask
        let selfBitmap = local.bitmap & mask, peerBitmap = peer.bitmap & mask
        let selfH1 = local.historyStart & mask, selfH2 = local.historyEnd & mask
        let peerH1 = peer.historyStart & mask, peerH2 = peer.historyEnd & mask
        let created = GenerationUUIDs.justCreatedValue

        if selfCurrent == created, peerCurrent == created { return result(0, 10) }
        if selfCurrent == created || selfCurrent == 0, peerCurrent != created { return result(-2, 20) }
        if selfCurrent != created, peerCurrent == created || peerCurrent == 0 { return result(2, 30) }

        if selfCurrent == peerCurrent {
            if peerBitmap == 0, selfBitmap != 0 {
                if input.protocolVersion < 91 { return result(-1091, 34) }
                if selfBitmap == peerH1, selfH1 == peerH2 {
                    // We were SyncSource and missed the "resync finished" event: finish it now.
                    local.historyEnd = local.historyStart
                    local.historyStart = local.bitmap
                    local.bitmap = 0
                    return result(1, 34)
                }
                return result(1, 36)
            }
            if selfBitmap == 0, peerBitmap != 0 {
                if input.protocolVersion < 91 { return result(-1091, 35) }
                if peerBitmap == selfH1, peerH1 == selfH2 {
                    peer.historyEnd = peer.historyStart
                    peer.historyStart = peer.bitmap
                    peer.bitmap = 0
                    return result(-1, 35)
                }
                return result(-1, 37)
            }
            if input.localRole == .primary || input.peerRole == .primary {
                if input.localRole == .primary, input.peerRole == .primary { return result(-100, 41) }
                let crashed = input.localCrashedPrimary || input.peerCrashedPrimary
                if crashed { return result(input.localRole == .primary ? 1 : -1, 41) }
            }
            let rct = (input.localCrashedPrimary ? 1 : 0) + (input.peerCrashedPrimary ? 2 : 0)
            switch rct {
            case 0: return result(0, 40)
            case 1: return result(1, 40)
            case 2: return result(-1, 40)
            default: return result(input.resolveConflicts ? -1 : 1, 40)
            }
        }

        if selfCurrent == peerBitmap { return result(-1, 50) }

        if selfCurrent == peerH1 {
            let lostSyncUUID = input.protocolVersion < 96
                ? selfH1 == peerH2
                : peerH1 &+ GenerationUUIDs.newBitmapOffset == peerBitmap
            if lostSyncUUID {
                if input.protocolVersion < 91 { return result(-1091, 51) }
                // The peer started a resync whose sync UUID we never received: undo it.
                peer.bitmap = peer.historyStart
                peer.historyStart = peer.historyEnd
                return result(-1, 51)
            }
        }

        // Replica's rule 52: we are the Inconsistent target of a resync that the peer, a Primary
        // SyncSource, left when it lost us; it started a new generation then (its sync UUID went
        // to history) and its bitmap still covers every block we lack, so the resync resumes.
        if input.localInconsistent, selfCurrent == peerH1, peerBitmap != 0 { return result(-1, 52) }

        if selfCurrent == peerH1 || selfCurrent == peerH2 { return result(-2, 60) }

        if selfBitmap == peerCurrent { return result(1, 70) }

        if selfH1 == peerCurrent {
            let lostSyncUUID = input.protocolVersion < 96
                ? selfH2 == peerH1
                : selfH1 &+ GenerationUUIDs.newBitmapOffset == selfBitmap
            if lostSyncUUID {
                if input.protocolVersion < 91 { return result(-1091, 71) }
                local.bitmap = local.historyStart
                local.historyStart = local.historyEnd
                return result(1, 71)
            }
        }

        // Replica's rule 72, the mirror of rule 52: we are that SyncSource.
        if input.peerInconsistent, peerCurrent == selfH1, selfBitmap != 0 { return result(1, 72) }

        if peerCurrent == selfH1 || peerCurrent == selfH2 { return result(2, 80) }

        if selfBitmap == peerBitmap, selfBitmap != 0 { return result(100, 90) }

        // An empty history slot (0) names no generation, so it relates nothing.
        for mine in [selfH1, selfH2] where mine != 0 {
            for theirs in [peerH1, peerH2] where theirs == mine { return result(-100, 100) }
        }
        return result(-1000, 0)
    }
}
