/// `after-sb-0pri` values.
public enum AfterSplitBrain0Pri: String, Sendable, CaseIterable {
    case disconnect, discardYoungerPrimary = "discard-younger-primary", discardOlderPrimary = "discard-older-primary"
    case discardZeroChanges = "discard-zero-changes", discardLeastChanges = "discard-least-changes"
    case discardLocal = "discard-local", discardRemote = "discard-remote"
}

/// `after-sb-1pri` values.
public enum AfterSplitBrain1Pri: String, Sendable, CaseIterable {
    case disconnect, consensus, discardSecondary = "discard-secondary"
    case callPriLostAfterSB = "call-pri-lost-after-sb", violentlyAs0p = "violently-as0p"
}

/// `after-sb-2pri` values.
public enum AfterSplitBrain2Pri: String, Sendable, CaseIterable {
    case disconnect, callPriLostAfterSB = "call-pri-lost-after-sb", violentlyAs0p = "violently-as0p"
}

/// What each side knows to pick a split-brain victim (reference 3.5).
public struct SplitBrainInput: Sendable, Equatable {
    /// Bit 0 of this node's bitmap UUID: it was Primary when the nodes split.
    public var localWasPrimaryAtSplit: Bool
    /// Bit 0 of the peer's bitmap UUID.
    public var peerWasPrimaryAtSplit: Bool
    /// Number of bits set in this node's bitmap.
    public var localChanges: UInt64
    /// Number of bits set in the peer's bitmap (P_UUIDS dirty bits).
    public var peerChanges: UInt64
    /// This node's current role.
    public var localRole: Role
    /// The peer's current role.
    public var peerRole: Role
    /// This node holds RESOLVE_CONFLICTS.
    public var resolveConflicts: Bool

    /// Creates an input.
    public init(localWasPrimaryAtSplit: Bool, peerWasPrimaryAtSplit: Bool, localChanges: UInt64, peerChanges: UInt64,
                localRole: Role, peerRole: Role, resolveConflicts: Bool) {
        self.localWasPrimaryAtSplit = localWasPrimaryAtSplit
        self.peerWasPrimaryAtSplit = peerWasPrimaryAtSplit
        self.localChanges = localChanges
        self.peerChanges = peerChanges
        self.localRole = localRole
        self.peerRole = peerRole
        self.resolveConflicts = resolveConflicts
    }
}

/// The outcome of an automatic split-brain policy.
public enum SplitBrainVerdict: Sendable, Equatable {
    /// No decision: the connection is dropped, an administrator decides.
    case noDecision
    /// The peer's changes are discarded: this node becomes SyncSource.
    case discardPeer
    /// This node's changes are discarded: it becomes SyncTarget.
    case discardLocal
    /// This node (a Primary) must be demoted before it can be discarded; if that fails the
    /// `pri-lost-after-sb` handler runs.
    case demoteLocalThenDiscard

    /// DRBD's numeric form: +1 peer discarded, -1 self discarded, -100 no decision.
    public var handshake: Int {
        switch self {
        case .noDecision: -100
        case .discardPeer: 1
        case .discardLocal, .demoteLocalThenDiscard: -1
        }
    }
}

/// DRBD's automatic split-brain recovery (`drbd_asb_recover_0p/1p/2p`).
public enum SplitBrainRecovery {
    /// `after-sb-0pri`.
    public static func zeroPrimaries(_ policy: AfterSplitBrain0Pri, _ input: SplitBrainInput) -> SplitBrainVerdict {
        switch policy {
        case .disconnect:
            return .noDecision
        case .discardLocal:
            return .discardLocal
        case .discardRemote:
            return .discardPeer
        case .discardYoungerPrimary, .discardOlderPrimary:
            if input.localWasPrimaryAtSplit != input.peerWasPrimaryAtSplit {
                // The node that was not Primary at the split became Primary later: it is younger.
                let localIsYounger = !input.localWasPrimaryAtSplit
                let discardYounger = policy == .discardYoungerPrimary
                return localIsYounger == discardYounger ? .discardLocal : .discardPeer
            }
            return leastChanges(input)
        case .discardZeroChanges:
            switch (input.localChanges == 0, input.peerChanges == 0) {
            case (true, true): return input.resolveConflicts ? .discardLocal : .discardPeer
            case (true, false): return .discardLocal
            case (false, true): return .discardPeer
            case (false, false): return .noDecision
            }
        case .discardLeastChanges:
            return leastChanges(input)
        }
    }

    private static func leastChanges(_ input: SplitBrainInput) -> SplitBrainVerdict {
        if input.localChanges < input.peerChanges { return .discardLocal }
        if input.localChanges > input.peerChanges { return .discardPeer }
        return input.resolveConflicts ? .discardLocal : .discardPeer
    }

    /// `after-sb-1pri`, with `zeroPrimaries` as the policy it falls back to.
    public static func onePrimary(_ policy: AfterSplitBrain1Pri, fallback: AfterSplitBrain0Pri, _ input: SplitBrainInput) -> SplitBrainVerdict {
        let base = zeroPrimaries(fallback, input)
        switch policy {
        case .disconnect:
            return .noDecision
        case .consensus:
            if base == .discardLocal, input.localRole == .secondary { return base }
            if base == .discardPeer, input.peerRole == .secondary { return base }
            return .noDecision
        case .violentlyAs0p:
            return base
        case .discardSecondary:
            return input.localRole == .secondary ? .discardLocal : .discardPeer
        case .callPriLostAfterSB:
            return base == .discardLocal && input.localRole == .primary ? .demoteLocalThenDiscard : base
        }
    }

    /// `after-sb-2pri`.
    public static func twoPrimaries(_ policy: AfterSplitBrain2Pri, fallback: AfterSplitBrain0Pri, _ input: SplitBrainInput) -> SplitBrainVerdict {
        let base = zeroPrimaries(fallback, input)
        switch policy {
        case .disconnect: return .noDecision
        case .violentlyAs0p: return base
        case .callPriLostAfterSB: return base == .discardLocal ? .demoteLocalThenDiscard : base
        }
    }
}
