/// Diskless operation (reference 2.1, 5.9): `detach`, `on-io-error detach`, and a node that
/// serves its application through the peer — reads as data requests, writes sent only to the
/// peer. A diskless engine asks for no disk work; `attach` gives the runtime a new engine.
extension VolumeEngine {
    /// An engine for a volume configured without a disk (`disk none`: a diskless client).
    /// Diskless from the start and without meta-data: once connected its size is the peer's,
    /// and it serves its application through the peer (Primary while the peer is UpToDate).
    /// It connects to whatever data its peer has; once its application used a generation, it
    /// connects only to that one (as a Diskless Primary does).
    public static func withoutDisk(configuration: EngineConfiguration, entropySeed: UInt64) -> VolumeEngine {
        let noLayout = MetadataLayout(placement: .external, superblockOffset: 0, sizeSectors: 0, activityLogOffsetSectors: 0,
                                      bitmapOffsetSectors: 0, activityLogStripes: 1, activityLogStripeSize4k: 8,
                                      usableDataBytes: 0, bitmapBytes: 0)
        var superblock = Superblock(layout: noLayout)
        superblock.uuids = GenerationUUIDs(current: 0)
        var engine = VolumeEngine(configuration: configuration, superblock: superblock, bitmap: Bitmap(bitCount: 0),
                                  dataSize: 0, entropySeed: entropySeed)
        engine.hasNoDisk = true
        engine.state.disk = .diskless
        engine.state.peerDisk = .dUnknown
        return engine
    }

    /// `detach`: the node stops using its backing device and goes Diskless. Refused for a
    /// Primary without an UpToDate peer to serve it (DRBD's "Need access to UpToDate data").
    public mutating func detach() -> Result<[EngineEffect], StateChangeError> {
        guard state.disk > .diskless else { return .failure(.isDiskless) }
        var context = StateRuleContext()
        context.allowTwoPrimaries = configuration.allowTwoPrimaries
        if let error = StateRules.validate(disklessState, context) { return .failure(error) }
        var effects: [EngineEffect] = []
        becomeDiskless(reason: "detach requested", &effects)
        return .success(effects)
    }

    /// Goes Diskless: the meta-data is written a last time (clean, with the bitmap), the
    /// runtime told to let the disk go, a resync in progress ends, and the peer learns the new
    /// disk state.
    ///
    /// After a failed meta-data write (`metadataFailed`) the bitmap on disk may lack bits, so
    /// the superblock first says "full sync needed" (MDF_FULL_SYNC: the next attach sets every
    /// bit), then the bitmap is written, then the superblock without the flag: whichever of
    /// these writes fails, the ones after it are not done (``EngineDriver``), and the disk is
    /// left saying either "full sync" or a complete bitmap — never a bitmap missing changes.
    mutating func becomeDiskless(reason: String, metadataFailed: Bool = false, _ effects: inout [EngineEffect]) {
        guard state.disk > .diskless else { return }
        effects.append(.log("\(reason): going Diskless"))
        if metadataFailed {
            // What the disk should say, as it is now (before the Diskless state changes the
            // flags): kept for an attach of the same disk, whose meta-data may not say it.
            var intended = superblock
            intended.flags.insert(.activityLogClean)
            unwrittenMetadata = (intended, bitmap)
            superblock.flags.insert(.fullSync)
            superblock.flags.remove(.activityLogClean)
            persistSuperblock(&effects)
            superblock.flags.remove(.fullSync)
        }
        superblock.flags.insert(.activityLogClean)
        counters.bitmapWrites += 1
        persistBitmap(&effects)
        persistSuperblock(&effects)
        effects.append(.detachDisk(reason: reason))
        // The data the application goes on with: the peer's if it holds an UpToDate copy, else
        // this disk's (a peer that is Diskless too has no data of its own to offer; simulator
        // seed 30208 connected to such a peer's stale disk after it attached).
        // A disk still Negotiating (an attach in place not yet answered) never served anything:
        // the data stays what it was.
        if state.disk != .negotiating {
            let peerData = state.connection >= .connected && state.peerDisk == .upToDate ? handshake.peerUUIDs?.uuids.current : nil
            effectiveDataUUID = (peerData ?? superblock.uuids.current) & ~1
        }
        resync = ResyncProgress()
        setState(disklessState, &effects, persist: false)
        // Writes that waited (for an activity-log slot, or for a resync answer of the disk
        // now gone) go on as a Diskless node's writes: dropping them would never complete
        // them (found by the simulator, seed 53958).
        retryWaitingWrites(&effects)
    }

    /// This state with the disk gone: Diskless, and a resync in progress ended.
    var disklessState: ResourceState {
        var next = state
        next.disk = .diskless
        if next.connection.isResync { next.connection = .connected }
        return next
    }

    /// A local I/O failed: `on-io-error` decides. Returns true when the node detached (the
    /// failed operation is then served by the peer where it can be).
    mutating func localIOFailed(_ error: BlockIOError, _ effects: inout [EngineEffect]) -> Bool {
        guard state.disk > .diskless else { return true }
        switch configuration.onIOError {
        case .passOn:
            return false
        case .callLocalIOError:
            effects.append(.callHandler("local-io-error"))
            becomeDiskless(reason: "local I/O error (\(error)), on-io-error call-local-io-error", &effects)
        case .detach:
            becomeDiskless(reason: "local I/O error (\(error)), on-io-error detach", &effects)
        }
        return true
    }

    /// A meta-data write failed (``EngineEvent/metadataWriteFailed(_:_:)``): bitmap pages it
    /// carried count as unsaved again, and the disk is let go — DRBD detaches on a meta-data
    /// I/O error whatever `on-io-error` says (`pass_on` applies to data I/O only), running the
    /// `local-io-error` handler first for `call-local-io-error`.
    mutating func metadataWriteFailed(_ write: MetadataWrite, _ error: BlockIOError, _ effects: inout [EngineEffect]) {
        if case .bitmapPages(let runs) = write {
            for run in runs { bitmap.markPagesUnsaved(run) }
        }
        guard state.disk > .diskless else {
            effects.append(.log("meta-data write failed after the disk was let go (\(write)): \(error)"))
            return
        }
        if configuration.onIOError == .callLocalIOError { effects.append(.callHandler("local-io-error")) }
        becomeDiskless(reason: "meta-data I/O error (\(write): \(error))", metadataFailed: true, &effects)
    }

    /// True when a Diskless node can serve application I/O through its peer.
    var peerServesData: Bool {
        state.connection >= .connected && state.peerDisk == .upToDate
    }

    /// The writes go to a peer whose copy is UpToDate: it can answer for a write or flush
    /// that failed on this disk once the disk is gone.
    var peerHoldsUpToDateCopy: Bool { replicating && state.peerDisk == .upToDate }

    /// This node has no good data of its own (Diskless, or a disk being resynced from the
    /// peer): what it writes counts only once the peer has it.
    var peerCopyIsTheOnlyGoodOne: Bool { state.disk < .upToDate }

    /// Every block of an epoch the peer has not barrier-acknowledged is out of sync.
    mutating func markTransferLogOutOfSync() {
        for ranges in writes.transferLog.values {
            for range in ranges { bitmap.markOutOfSync(offset: range.lowerBound, length: Int64(range.count)) }
        }
    }

    /// The peer let its disk go: writes it has not confirmed as durable (epochs not
    /// barrier-acknowledged, writes not acknowledged) may not be on its disk — written to its
    /// cache and lost if it crashes before it flushed — so they are out of sync for the disk it
    /// attaches again, as at a disconnect (simulator seed 6101425 with meta-data faults: a
    /// SyncTarget whose superblock write failed as its resync ended let its disk go, crashed,
    /// and came back without a mirrored write that neither bitmap marked).
    mutating func markUnconfirmedWritesOutOfSync() {
        markTransferLogOutOfSync()
        for write in writes.pending.values where write.networkPending {
            bitmap.markOutOfSync(offset: write.offset, length: Int64(write.length))
        }
    }

    // MARK: - Requests of a diskless node

    /// A read served by the peer (P_DATA_REQUEST); the request completes with its reply.
    mutating func startRemoteRead(_ id: RequestID, offset: Int64, length: Int, _ effects: inout [EngineEffect]) {
        guard peerServesData else {
            effects.append(.complete(id, .failure(.noUpToDateData)))
            return
        }
        remoteReads[id] = offset..<(offset + Int64(length))
        effects.append(.send(.dataRequest(BlockRequest(offset: UInt64(offset), blockID: id, size: UInt32(length)))))
    }

    // MARK: - The peer's side of remote reads

    /// The peer asks for data (it is Diskless): read it here if this disk is UpToDate.
    mutating func receivedDataRequest(_ request: BlockRequest, _ effects: inout [EngineEffect]) {
        let end = Int64(request.offset) + Int64(request.size)
        guard state.disk == .upToDate, state.connection >= .connected, end <= size, request.size > 0 else {
            effects.append(.send(.negativeDataReply(BlockAck(offset: request.offset, blockID: request.blockID, size: request.size, sequence: 0))))
            return
        }
        submit(.read(offset: Int64(request.offset), length: Int(request.size)), purpose: .peerRead(request), &effects)
    }

    mutating func peerReadDone(_ request: BlockRequest, _ result: LocalIOResult, _ effects: inout [EngineEffect]) {
        switch result {
        case .success(let data):
            counters.diskRead += UInt64(data.count / 1024)
            counters.networkSent += UInt64(data.count / 1024)
            effects.append(.send(.dataReply(offset: request.offset, blockID: request.blockID, data)))
        case .failure(let error):
            effects.append(.send(.negativeDataReply(BlockAck(offset: request.offset, blockID: request.blockID, size: request.size, sequence: 0))))
            _ = localIOFailed(error, &effects)
        }
    }

    /// The answer to one of our data requests.
    mutating func receivedDataReply(_ offset: UInt64, _ blockID: UInt64, _ data: [UInt8], _ effects: inout [EngineEffect]) {
        guard let range = remoteReads[blockID], range.lowerBound == Int64(offset), range.count == data.count else {
            protocolViolation("data reply for \(offset)+\(data.count) (block \(blockID)) that was not asked for", &effects)
            return
        }
        remoteReads[blockID] = nil
        counters.networkReceived += UInt64(data.count / 1024)
        effects.append(.complete(blockID, .success(data)))
    }

    /// The peer could not read what we asked for.
    mutating func receivedNegativeDataReply(_ ack: BlockAck, _ effects: inout [EngineEffect]) {
        guard let range = remoteReads.removeValue(forKey: ack.blockID) else { return }
        let error = BlockIOError(operation: .read, offset: range.lowerBound, length: Int64(range.count), errno: 5,
                                 detail: "the peer could not read it")
        effects.append(.complete(ack.blockID, .failure(.ioError(error))))
    }

    /// The connection ended: reads waiting for the peer fail (no UpToDate data is reachable).
    mutating func failRemoteReads(_ effects: inout [EngineEffect]) {
        for id in remoteReads.keys.sorted() { effects.append(.complete(id, .failure(.noUpToDateData))) }
        remoteReads.removeAll()
    }
}
