/// Configuration and local facts that the state rules depend on.
public struct StateRuleContext: Sendable, Equatable {
    /// `allow-two-primaries`.
    public var allowTwoPrimaries = false
    /// `fencing` (dont-care, resource-only, resource-and-stonith).
    public var fencing: String = "dont-care"
    /// The replicated device is open by an application (or an NBD client).
    public var deviceOpen = false
    /// `verify-alg` is configured.
    public var hasVerifyAlgorithm = false
    /// The agreed protocol version with the peer.
    public var peerProtocolVersion = 101

    /// Creates a context.
    public init() {}
}

/// DRBD 8.4's state-change rules (`is_valid_state`, `is_valid_soft_transition`,
/// `is_valid_conn_transition`, reference 2.2) as one pure function.
public enum StateRules {
    /// Checks the invariants every state must satisfy, in DRBD's order; the first broken
    /// rule is returned.
    public static func validate(_ state: ResourceState, _ context: StateRuleContext) -> StateChangeError? {
        let s = state
        if s.role == .primary, s.peerRole == .primary, !context.allowTwoPrimaries { return .twoPrimaries }
        if s.role == .secondary, context.deviceOpen { return .deviceInUse }
        if s.role == .primary, s.connection < .connected, s.disk < .upToDate { return .noUpToDateDisk }
        if context.fencing != "dont-care", s.role == .primary, s.connection < .connected, s.peerDisk >= .dUnknown {
            return .primaryNop
        }
        if s.role == .primary, s.disk <= .inconsistent, s.peerDisk <= .inconsistent { return .noUpToDateDisk }
        if s.connection > .connected {
            if s.disk < .inconsistent { return .noLocalDisk }
            if s.peerDisk < .inconsistent { return .noRemoteDisk }
            if s.disk != .upToDate, s.peerDisk != .upToDate { return .noUpToDateDisk }
        }
        if s.disk == .outdated, [.connected, .wfBitMapS, .syncSource, .pausedSyncS].contains(s.connection) {
            return .connectedOutdates
        }
        if s.connection == .verifyS || s.connection == .verifyT {
            if !context.hasVerifyAlgorithm { return .noVerifyAlgorithm }
            if context.peerProtocolVersion < 88 { return .notSupported }
        }
        if s.role == .primary, s.disk < .upToDate, s.peerDisk < .upToDate { return .noUpToDateDisk }
        if s.connection == .startingSyncS || s.connection == .startingSyncT, s.peerDisk == .dUnknown { return .needConnection }
        if s.connection >= .connected, s.peerDisk == .dUnknown { return .connectedOutdates }
        return nil
    }

    /// Checks a change requested by an administrator (a "soft" transition) from `old` to `new`:
    /// the connection-transition rules, the soft rules, then the invariants of `new`.
    public static func validateChange(from old: ResourceState, to new: ResourceState, _ context: StateRuleContext) -> StateChangeError? {
        if let error = validateConnectionTransition(from: old.connection, to: new.connection) { return error }
        if (new.connection == .startingSyncS || new.connection == .startingSyncT), old.connection.isResync { return .resyncRunning }
        if new.disk == .outdated, old.disk < .outdated, old.disk != .attaching { return .lowerThanOutdated }
        if (new.connection == .verifyS || new.connection == .verifyT), old.connection != .connected { return .needConnection }
        return validate(new, context)
    }

    /// `is_valid_conn_transition`.
    public static func validateConnectionTransition(from old: ConnectionState, to new: ConnectionState) -> StateChangeError? {
        if old == new { return nil }
        if old == .standAlone, new == .disconnecting { return .alreadyStandAlone }
        if old == .standAlone, new != .unconnected { return .needConnection }
        // A connection is established only through WFReportParams.
        if old < .wfReportParams, new >= .connected { return .needConnection }
        // After a network error only Unconnected or Disconnecting may follow.
        if (.timeout ... .tearDown).contains(old), new != .unconnected, new != .disconnecting { return .inTransientState }
        if old == .disconnecting, new != .standAlone { return .inTransientState }
        return nil
    }

    /// `sanitize_state` (reference 2.3): the implicit consequences of a state.
    public static func sanitize(_ state: ResourceState) -> ResourceState {
        var s = state
        if s.connection < .connected {
            s.peerRole = .unknown
            if !(DiskState.inconsistent ... DiskState.outdated).contains(s.peerDisk) { s.peerDisk = .dUnknown }
        }
        if s.connection > .connected, s.disk <= .failed || s.peerDisk <= .failed, s.connection != .ahead, s.connection != .behind {
            s.connection = .connected
        }
        if s.connection >= .connected, s.connection < .ahead {
            // Consistent and Outdated vanish once connected; the sync states below clamp again.
            if s.disk == .consistent || s.disk == .outdated { s.disk = .upToDate }
            if s.peerDisk == .consistent || s.peerDisk == .outdated { s.peerDisk = .upToDate }
        }
        switch s.connection {
        case .syncTarget: s.disk = .inconsistent; s.peerDisk = .upToDate
        case .syncSource: s.disk = .upToDate; s.peerDisk = .inconsistent
        case .wfBitMapT, .pausedSyncT, .startingSyncT, .wfSyncUUID, .behind:
            s.disk = min(max(s.disk, .inconsistent), .outdated); s.peerDisk = .upToDate
        case .wfBitMapS, .pausedSyncS, .startingSyncS, .ahead:
            s.disk = .upToDate; s.peerDisk = min(max(s.peerDisk, .inconsistent), .consistent)
        case .verifyS, .verifyT: s.disk = .upToDate; s.peerDisk = .upToDate
        default: break
        }
        let paused = s.afterSyncPause || s.peerSyncPause || s.userSyncPause
        if paused, s.connection == .syncSource { s.connection = .pausedSyncS }
        if paused, s.connection == .syncTarget { s.connection = .pausedSyncT }
        if !paused, s.connection == .pausedSyncS { s.connection = .syncSource }
        if !paused, s.connection == .pausedSyncT { s.connection = .syncTarget }
        return s
    }

    /// Promotion (`drbd_set_role`, reference 2.5) in the pure model: returns the new state or
    /// the refusal. With `force`, Inconsistent…Consistent local data is declared UpToDate.
    public static func promote(_ state: ResourceState, force: Bool, _ context: StateRuleContext) -> Result<ResourceState, StateChangeError> {
        var next = state
        next.role = .primary
        guard state.disk > .diskless || state.connection >= .connected else { return .failure(.noUpToDateDisk) }
        if let error = validate(next, context) {
            guard error == .noUpToDateDisk || error == .primaryNop, force else { return .failure(error) }
            if error == .noUpToDateDisk {
                guard (DiskState.inconsistent ... DiskState.consistent).contains(state.disk) else { return .failure(error) }
                next.disk = .upToDate  // "Forced to consider local data as UpToDate!"
            } else {
                next.peerDisk = .outdated  // "Forced into split brain situation!"
            }
            if let again = validate(next, context) { return .failure(again) }
        }
        return .success(next)
    }

    /// Demotion: refused while the device is open.
    public static func demote(_ state: ResourceState, _ context: StateRuleContext) -> Result<ResourceState, StateChangeError> {
        var next = state
        next.role = .secondary
        if let error = validate(next, context) { return .failure(error) }
        return .success(next)
    }
}
