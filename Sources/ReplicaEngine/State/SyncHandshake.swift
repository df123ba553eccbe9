/// The policies and facts `drbd_sync_handshake` applies after the UUID comparison (reference 3.4).
public struct SyncHandshakeContext: Sendable, Equatable {
    /// This node's disk state.
    public var localDisk: DiskState
    /// The peer's disk state.
    public var peerDisk: DiskState
    /// `after-sb-0pri`.
    public var afterSB0: AfterSplitBrain0Pri = .disconnect
    /// `after-sb-1pri`.
    public var afterSB1: AfterSplitBrain1Pri = .disconnect
    /// `after-sb-2pri`.
    public var afterSB2: AfterSplitBrain2Pri = .disconnect
    /// `always-asbp`.
    public var alwaysASBP = false
    /// `rr-conflict`: what to do when a Primary would become SyncTarget.
    public var rrConflict: String = "disconnect"
    /// This node asked to be the victim (`connect --discard-my-data`).
    public var discardMyData = false
    /// The peer asked to be the victim (P_UUIDS flag 1).
    public var peerDiscardMyData = false
    /// Split-brain facts (roles, changes, who was Primary at the split).
    public var splitBrain: SplitBrainInput

    /// Creates a context.
    public init(localDisk: DiskState, peerDisk: DiskState, splitBrain: SplitBrainInput) {
        self.localDisk = localDisk
        self.peerDisk = peerDisk
        self.splitBrain = splitBrain
    }
}

/// What the connect handshake decides.
public enum SyncDecision: Sendable, Equatable {
    /// Connected, no resync.
    case noSync
    /// This node becomes SyncSource (`full`: every bit set first).
    case syncSource(full: Bool)
    /// This node becomes SyncTarget.
    case syncTarget(full: Bool)
    /// The connection is dropped (StandAlone) for the reason given.
    case disconnect(DisconnectReason)

    /// Why a handshake ended the connection.
    public enum DisconnectReason: Sendable, Equatable, CustomStringConvertible {
        /// Split brain that no policy resolved.
        case splitBrain
        /// The data sets share no generation.
        case unrelatedData
        /// The peer needs a newer protocol version for this case.
        case needsProtocol(Int)
        /// This node would be source but has no consistent data.
        case inconsistentSource
        /// A Primary would become SyncTarget and `rr-conflict` says disconnect.
        case primaryWouldBecomeTarget
        /// Both sides asked to discard their own data.
        case bothDiscardMyData

        public var description: String {
            switch self {
            case .splitBrain: "Split-Brain detected but unresolved, dropping connection!"
            case .unrelatedData: "Unrelated data, aborting!"
            case .needsProtocol(let version): "To resolve this both sides have to support at least protocol \(version)"
            case .inconsistentSource: "I shall become SyncSource, but I am inconsistent!"
            case .primaryWouldBecomeTarget: "I shall become SyncTarget, but I am primary!"
            case .bothDiscardMyData: "incompatible discard-my-data settings: both sides asked to discard their data"
            }
        }
    }
}

/// The outcome of the handshake, with what led to it.
public struct SyncHandshakeResult: Sendable, Equatable {
    /// The decision.
    public var decision: SyncDecision
    /// The UUID comparison it started from.
    public var comparison: UUIDComparison
    /// True when a split brain was detected (resolved or not): the `split-brain` or
    /// `initial-split-brain` handler hook fires.
    public var splitBrainDetected: Bool
    /// True when an automatic policy resolved the split brain.
    public var automaticallyResolved: Bool
    /// True when a losing Primary must demote (call-pri-lost-after-sb) first.
    public var demoteLocalPrimary: Bool
}

/// `drbd_sync_handshake`: the UUID comparison followed by DRBD's post-processing.
public enum SyncHandshake {
    /// Decides sync direction, split-brain resolution or disconnect.
    public static func decide(_ input: UUIDHandshakeInput, _ context: SyncHandshakeContext) -> SyncHandshakeResult {
        let comparison = UUIDComparison.compare(input)
        var hg = comparison.handshake
        var detected = false, resolved = false, demote = false
        func finish(_ decision: SyncDecision) -> SyncHandshakeResult {
            SyncHandshakeResult(decision: decision, comparison: comparison, splitBrainDetected: detected,
                                automaticallyResolved: resolved, demoteLocalPrimary: demote)
        }
        if hg == -1000 { return finish(.disconnect(.unrelatedData)) }
        if hg < -1000 { return finish(.disconnect(.needsProtocol(-hg - 1000))) }

        // One side Inconsistent and the other better: the consistent side is the source.
        let localBad = context.localDisk == .inconsistent, peerBad = context.peerDisk == .inconsistent
        if localBad != peerBad, context.localDisk >= .inconsistent, context.peerDisk >= .inconsistent {
            let full = abs(hg) == 2 || hg == -100
            hg = localBad ? -1 : 1
            if full { hg *= 2 }
        }

        if abs(hg) == 100 { detected = true }
        if hg == 100 || (hg == -100 && context.alwaysASBP) {
            let primaries = (input.localRole == .primary ? 1 : 0) + (input.peerRole == .primary ? 1 : 0)
            let verdict: SplitBrainVerdict
            switch primaries {
            case 0: verdict = SplitBrainRecovery.zeroPrimaries(context.afterSB0, context.splitBrain)
            case 1: verdict = SplitBrainRecovery.onePrimary(context.afterSB1, fallback: context.afterSB0, context.splitBrain)
            default: verdict = SplitBrainRecovery.twoPrimaries(context.afterSB2, fallback: context.afterSB0, context.splitBrain)
            }
            if verdict != .noDecision {
                let historyOnly = hg == -100
                hg = verdict.handshake * (historyOnly ? 2 : 1)
                resolved = true
                demote = verdict == .demoteLocalThenDiscard
            }
        }
        if abs(hg) == 100 {
            switch (context.discardMyData, context.peerDiscardMyData) {
            case (true, false): hg = -1
            case (false, true): hg = 1
            case (true, true): return finish(.disconnect(.bothDiscardMyData))
            case (false, false): break
            }
            if hg != 100 && hg != -100 { resolved = true }
        }
        if abs(hg) == 100 { return finish(.disconnect(.splitBrain)) }

        if hg > 0, context.localDisk <= .inconsistent { return finish(.disconnect(.inconsistentSource)) }
        if hg < 0, input.localRole == .primary, context.localDisk >= .consistent, !demote {
            switch context.rrConflict {
            case "violently": break
            default: return finish(.disconnect(.primaryWouldBecomeTarget))
            }
        }
        switch hg {
        case 0: return finish(.noSync)
        case 1...: return finish(.syncSource(full: hg >= 2))
        default: return finish(.syncTarget(full: hg <= -2))
        }
    }
}
