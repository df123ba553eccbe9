/// Administrative commands of a volume, as drbdadm names them.
extension VolumeEngine {
    /// `primary [--force]`. With `force`, Inconsistent…Consistent data is declared UpToDate
    /// and a new data generation starts.
    public mutating func promote(force: Bool, deviceOpen: Bool = false) -> Result<[EngineEffect], StateChangeError> {
        var context = StateRuleContext()
        context.allowTwoPrimaries = configuration.allowTwoPrimaries
        context.deviceOpen = deviceOpen
        guard state.role != .primary else { return .success([]) }
        switch StateRules.promote(state, force: force, context) {
        case .failure(let error):
            return .failure(error)
        case .success(let next):
            var effects: [EngineEffect] = []
            let connected = state.connection >= .connected
            if !connected, superblock.uuids.bitmap != 0, !startedCurrentGeneration {
                // Promoted apart with a bitmap UUID this node did not start its current generation
                // with: it served a resync (the bitmap UUID is the sync UUID) whose target may have
                // finished unseen and been promoted since, or it restarted since. DRBD 8.4 starts
                // no new generation here (its rule asks for a bitmap UUID of 0), so both writing
                // apart would not show as a split brain (simulator seeds 12031, 150464). Replica
                // starts one: the old bitmap UUID goes to history. At worst a later resync is a
                // full one instead of a bitmap one.
                superblock.uuids.clearBitmapUUID()
                superblock.uuids.newCurrent(random: nextRandomUUID(), primary: true)
                startedCurrentGeneration = true
                effects.append(.log("new current UUID \(superblock.uuids.current.hex16) (promoted apart over a bitmap UUID of a generation not started here)"))
            } else if force || (!connected && superblock.uuids.bitmap == 0) {
                superblock.uuids.newCurrent(random: nextRandomUUID(), primary: true)
                // (Started while connected, the peer learns it at once: a generation of the pair.)
                startedCurrentGeneration = !connected
                effects.append(.log(force ? "Forced to consider local data as UpToDate!" : "new current UUID \(superblock.uuids.current.hex16)"))
            }
            superblock.uuids.setRoleBit(primary: true)
            persistSuperblock(&effects)
            setState(next, &effects)
            if connected { effects.append(.send(.uuids(uuidsPayload()))) }
            // As DRBD does: forcing data UpToDate next to a connected Inconsistent peer starts a full sync.
            if force, connected, state.peerDisk == .inconsistent { startFullSyncAsSource(&effects) }
            return .success(effects)
        }
    }

    /// `secondary`: refused while the device is open.
    public mutating func demote(deviceOpen: Bool = false) -> Result<[EngineEffect], StateChangeError> {
        var context = StateRuleContext()
        context.deviceOpen = deviceOpen
        guard state.role == .primary else { return .success([]) }
        switch StateRules.demote(state, context) {
        case .failure(let error):
            return .failure(error)
        case .success(let next):
            var effects: [EngineEffect] = []
            superblock.uuids.setRoleBit(primary: false)
            persistSuperblock(&effects)
            setState(next, &effects)
            if state.connection >= .connected { effects.append(.send(.uuids(uuidsPayload()))) }
            return .success(effects)
        }
    }

    /// `new-current-uuid [--clear-bitmap]`. Connected with two just-created disks and
    /// `clearBitmap`: both become UpToDate without a sync. Not connected: a new generation.
    public mutating func newCurrentUUID(clearBitmap: Bool) -> Result<[EngineEffect], StateChangeError> {
        var effects: [EngineEffect] = []
        let fresh = GenerationUUIDs.justCreatedValue
        if state.connection == .connected {
            guard clearBitmap, superblock.uuids.current & ~1 == fresh, (handshake.peerUUIDs?.uuids.current ?? 0) & ~1 == fresh else {
                return .failure(.inTransientState)
            }
            superblock.uuids = GenerationUUIDs(current: nextRandomUUID() | (state.role == .primary ? 1 : 0))
            bitmap.clearAll()
            persistBitmap(&effects)
            persistSuperblock(&effects)
            effects.append(.send(.uuids(uuidsPayload(extraFlags: 8))))
            var next = state
            next.disk = .upToDate
            next.peerDisk = .upToDate
            setState(next, &effects)
            return .success(effects)
        }
        guard state.connection < .wfReportParams else { return .failure(.inTransientState) }
        guard state.disk > .diskless else { return .failure(.isDiskless) }
        superblock.uuids.clearBitmapUUID()
        superblock.uuids.newCurrent(random: nextRandomUUID(), primary: state.role == .primary)
        startedCurrentGeneration = state.connection < .connected
        if clearBitmap {
            superblock.uuids.bitmap = 0
            bitmap.clearAll()
            persistBitmap(&effects)
        }
        persistSuperblock(&effects)
        return .success(effects)
    }

    /// `connect [--discard-my-data]`: leave StandAlone and wait for the peer.
    public mutating func connect(discardMyData: Bool) -> Result<[EngineEffect], StateChangeError> {
        guard state.connection == .standAlone else { return .failure(.inTransientState) }
        handshake = HandshakeProgress(discardMyData: discardMyData)
        var effects: [EngineEffect] = []
        var next = state
        next.connection = .wfConnection
        setState(next, &effects)
        return .success(effects)
    }

    /// `disconnect`: drop the connection and stay StandAlone.
    public mutating func disconnect() -> Result<[EngineEffect], StateChangeError> {
        guard state.connection != .standAlone else { return .failure(.alreadyStandAlone) }
        var effects: [EngineEffect] = []
        if state.connection >= .wfReportParams {
            effects.append(.send(.disconnect))
            lossCause = .disconnecting
            connectionLost(&effects)
        }
        effects.append(.closeConnection(reason: "disconnect requested", standAlone: true))
        var next = state
        next.connection = .standAlone
        setState(next, &effects)
        return .success(effects)
    }

    /// A full sync to the connected peer (after `primary --force` while connected).
    mutating func startFullSyncAsSource(_ effects: inout [EngineEffect]) {
        bitmap.setAll()
        var next = state
        next.connection = .wfBitMapS
        next.peerDisk = .inconsistent
        setState(next, &effects)
        handshake.bitmapWordsReceived = 0
        sendBitmap(&effects)
    }

    /// `invalidate`: this node's data is declared bad. Connected: a full sync from the peer.
    /// Not connected: Inconsistent with every bit set, synced on the next connect.
    public mutating func invalidate() -> Result<[EngineEffect], StateChangeError> {
        guard state.disk > .diskless else { return .failure(.isDiskless) }
        var effects: [EngineEffect] = []
        if state.connection == .connected {
            guard state.peerDisk == .upToDate else { return .failure(.noUpToDateDisk) }
            guard state.role == .secondary else { return .failure(.primaryNop) }
            bitmap.setAll()
            handshake.bitmapWordsReceived = 0
            var next = state
            next.connection = .wfBitMapT
            next.disk = .inconsistent
            setState(next, &effects)  // the peer answers by starting a full sync as source
            return .success(effects)
        }
        guard state.connection < .wfReportParams else { return .failure(.inTransientState) }
        guard state.role == .secondary else { return .failure(.noUpToDateDisk) }
        bitmap.setAll()
        superblock.flags.insert(.fullSync)
        persistBitmap(&effects)
        var next = state
        next.disk = .inconsistent
        setState(next, &effects)
        return .success(effects)
    }

    /// `invalidate-remote`: the peer's data is declared bad; a full sync to it (connected only).
    public mutating func invalidateRemote() -> Result<[EngineEffect], StateChangeError> {
        guard state.connection == .connected else { return .failure(.needConnection) }
        guard state.disk == .upToDate else { return .failure(.noUpToDateDisk) }
        var effects: [EngineEffect] = []
        startFullSyncAsSource(&effects)
        return .success(effects)
    }

    /// `outdate`: mark the local data Outdated; refused while connected (DRBD's rule 7).
    public mutating func outdate() -> Result<[EngineEffect], StateChangeError> {
        guard state.connection < .wfReportParams else { return .failure(.connectedOutdates) }
        guard state.disk >= .outdated else { return .failure(.lowerThanOutdated) }
        guard state.role == .secondary else { return .failure(.noUpToDateDisk) }
        var effects: [EngineEffect] = []
        var next = state
        next.disk = .outdated
        setState(next, &effects)
        return .success(effects)
    }

    /// `pause-sync` / `resume-sync`: the user's sync pause (PausedSyncS/T).
    public mutating func setUserSyncPause(_ paused: Bool) -> Result<[EngineEffect], StateChangeError> {
        guard state.connection.isResync || !paused else { return .failure(.needConnection) }
        var effects: [EngineEffect] = []
        var next = state
        next.userSyncPause = paused
        setState(next, &effects)
        if !paused { requestResyncBlocks(&effects) }
        return .success(effects)
    }
}
