extension VolumeEngine {
    /// Routes a frame from the peer to its handler; `held`: the frame's data, when the runtime
    /// received it apart from the frame (``EngineEvent/heldFrame(_:_:)``).
    mutating func received(_ frame: Frame, held: HeldData? = nil, _ effects: inout [EngineEffect]) {
        guard state.connection >= .wfReportParams else {
            effects.append(.log("frame \(frame.type) while \(state.connection) ignored"))
            return
        }
        // Behind a barrier that is not yet stable, later data-channel frames wait (write
        // ordering), held data and all.
        if receiver.holding, frame.type.channel == .data, handshake.decided {
            receiver.held.append((frame, held))
            return
        }
        if let held { return receivedWithHeldData(frame, held, &effects) }
        switch frame {
        case .features(let payload): receivedFeatures(payload, &effects)
        case .protocolParameters(let payload): receivedProtocolParameters(payload, &effects)
        case .syncParameters: break
        case .sizes(let payload): receivedSizes(payload, &effects)
        case .uuids(let payload): receivedUUIDs(payload, &effects)
        case .state(let value): receivedState(value, &effects)
        case .data(let header, let data): receivedData(header, data, &effects)
        case .barrier(let epoch): receivedBarrier(epoch, &effects)
        case .barrierAck(let epoch, let setSize): barrierAcknowledged(epoch: epoch, setSize: setSize, &effects)
        case .receiveAck(let ack):
            if configuration.wireProtocol == "B" { acknowledged(ack, failed: false, inSync: false, &effects) }
        case .writeAck(let ack): acknowledged(ack, failed: false, inSync: false, &effects)
        case .resyncWriteAck(let ack): resyncWriteAcknowledged(ack, &effects)
        case .negativeAck(let ack):
            acknowledged(ack, failed: true, inSync: false, &effects)
            if ack.blockID & ResyncProgress.resyncIDFlag != 0 { resyncReplyAnswered(ack.blockID, &effects) }
        case .resyncRequest(let request): receivedResyncRequest(request, &effects)
        case .resyncReply(let offset, let blockID, let data): receivedResyncReply(offset, blockID, data, &effects)
        case .negativeResyncReply(let ack): resyncRequestFailed(ack, &effects)
        case .syncUUID(let uuid): receivedSyncUUID(uuid, &effects)
        case .bitmap(let chunk), .compressedBitmap(let chunk): receivedBitmap(chunk, &effects)
        case .ping: effects.append(.send(.pingAck))
        case .pingAck: receivedPingAck()
        case .outOfSync(let offset, let size):
            // Written at once: the source clears its bit when our resync write is acknowledged,
            // before that write is durable, so after a crash here only our own bitmap still
            // names the block (found by the simulator, seed 102152).
            if markOutOfSync(offset: Int64(offset), length: Int64(size)) > 0 {
                counters.bitmapWrites += 1
                persistBitmap(&effects)
            }
        case .disconnect:
            effects.append(.log("peer disconnected"))
            lossCause = .disconnecting
            effects.append(.closeConnection(reason: "peer disconnected", standAlone: false))
        case .dataRequest(let request): receivedDataRequest(request, &effects)
        case .dataReply(let offset, let blockID, let data): receivedDataReply(offset, blockID, data, &effects)
        case .negativeDataReply(let ack): receivedNegativeDataReply(ack, &effects)
        case .stateChangeRequest, .stateChangeReply, .initialData, .initialMeta:
            protocolViolation("unexpected \(frame.type) frame", &effects)
        case .authChallenge, .authResponse:
            // Authentication runs before the link is made; a challenge here means the peer
            // has a shared secret and this node has none: a configuration to fix, not a
            // network failure to retry (DRBD goes StandAlone after an authentication failure).
            giveUp("Authentication of peer failed: the peer requires authentication (cram-hmac-alg and shared-secret in net { }), and none is configured here", &effects)
        }
    }

    /// A resync reply or a replicated write whose block the runtime holds: written from where
    /// it is held. The engine never opens held data.
    mutating func receivedWithHeldData(_ frame: Frame, _ held: HeldData, _ effects: inout [EngineEffect]) {
        switch frame {
        case .resyncReply(let offset, let blockID, let own) where own.isEmpty:
            receivedResyncReply(offset, blockID, count: held.count, write: .writeHeld(offset: Int64(offset), data: held), &effects)
        case .data(let header, let own) where own.isEmpty:
            receivedData(header, count: held.count, write: .writeHeld(offset: Int64(header.offset), data: held), &effects)
        default:
            protocolViolation("\(frame.type) frame with data received apart from it", &effects)
        }
    }

    /// A peer broke the protocol: the connection ends (ProtocolError, then reconnect).
    mutating func protocolViolation(_ message: String, _ effects: inout [EngineEffect]) {
        effects.append(.log("protocol error: \(message)"))
        lossCause = .protocolError
        effects.append(.closeConnection(reason: "protocol error: \(message)", standAlone: false))
    }

    // MARK: - Connection lifecycle

    mutating func connectionEstablished(resolveConflicts: Bool, _ effects: inout [EngineEffect]) {
        self.resolveConflicts = resolveConflicts
        handshake = HandshakeProgress(discardMyData: handshake.discardMyData)
        receiver = ReceiveTracking()
        resync = ResyncProgress()
        var next = state
        next.connection = .wfReportParams
        setState(next, &effects)
        effects.append(.send(.features(FeaturesPayload(protocolMin: 1, protocolMax: 1, featureFlags: 0, nodeID: 0))))
        effects.append(.send(.protocolParameters(protocolParameters)))
        let pacing = configuration.resyncPacing
        effects.append(.send(.syncParameters(SyncParametersPayload(
            resyncRate: UInt32(clamping: pacing.resyncRateKiB), planAhead: UInt32(clamping: pacing.planAheadSteps),
            delayTarget: UInt32(clamping: pacing.delayTargetSteps), fillTarget: UInt32(clamping: pacing.fillTargetSectors),
            maxRate: UInt32(clamping: pacing.maxRateKiB), verifyAlgorithm: "", checksumAlgorithm: ""))))
        effects.append(.send(.sizes(sizesPayload)))
        effects.append(.send(.uuids(uuidsPayload())))
        effects.append(.send(.state(state.wireValue)))
        handshake.sentParameters = true
        startPinging(&effects)
    }

    /// This node's sizes, as the handshake announces them.
    var sizesPayload: SizesPayload {
        SizesPayload(backingSize: UInt64(localSize), userSize: 0, currentSize: UInt64(size), maxRequestSize: UInt32(FrameLimits.maximumRequestSize))
    }

    var protocolParameters: ProtocolParametersPayload {
        func number(_ value: String) -> UInt8 {
            ["disconnect": 0, "discard-younger-primary": 1, "discard-older-primary": 2, "discard-zero-changes": 3, "discard-least-changes": 4,
             "discard-local": 5, "discard-remote": 6, "consensus": 7, "discard-secondary": 8, "call-pri-lost-after-sb": 9, "violently-as0p": 10][value] ?? 0
        }
        return ProtocolParametersPayload(
            wireProtocol: configuration.protocolNumber, afterSB0: number(configuration.afterSB0.rawValue),
            afterSB1: number(configuration.afterSB1.rawValue), afterSB2: number(configuration.afterSB2.rawValue),
            connectionFlags: handshake.discardMyData ? 1 : 0, allowTwoPrimaries: configuration.allowTwoPrimaries,
            integrityAlgorithm: configuration.dataIntegrityAlgorithm)
    }

    func uuidsPayload(extraFlags: UInt64 = 0) -> UUIDsPayload {
        var flags = extraFlags
        if handshake.discardMyData { flags |= 1 }
        if superblock.flags.contains(.crashedPrimary) { flags |= 2 }
        if state.disk == .inconsistent { flags |= 4 }
        return UUIDsPayload(uuids: superblock.uuids, dirtyBits: UInt64(bitmap.setCount), flags: flags)
    }

    /// The link is gone: the transient state of its cause is shown first (DRBD's
    /// NetworkFailure, Timeout, ProtocolError, ...), then WFConnection and a reconnect.
    mutating func connectionLost(_ effects: inout [EngineEffect]) {
        let cause = lossCause ?? .networkFailure
        lossCause = nil
        guard state.connection != .standAlone else { return }
        let previous = state
        let wasConnected = state.connection >= .connected
        let peerHadDisk = state.peerDisk >= .inconsistent
        let resyncMayHaveFinished = previous.connection == .syncSource || previous.connection == .pausedSyncS ? targetMayHaveFinished : false
        if state.connection >= .wfReportParams {
            var failed = state
            failed.connection = cause
            setState(failed, &effects)
        }
        // Every write the peer did not confirm is out of sync; one of a Diskless node is lost.
        for (id, write) in writes.pending where write.networkPending {
            bitmap.markOutOfSync(offset: write.offset, length: Int64(write.length))
            writes.pending[id]?.networkPending = false
            if write.peerCopyOnly { writes.pending[id]?.localError = Self.disklessError(.write(offset: write.offset, data: [])) }
        }
        for index in writes.flushes.indices where writes.flushes[index].peerCopyOnly && !writes.flushes[index].awaitedEpochs.isEmpty {
            writes.flushes[index].localError = Self.disklessError(.flush)
        }
        failRemoteReads(&effects)
        markTransferLogOutOfSync()
        writes.transferLog.removeAll()
        writes.barrierSentTick.removeAll()
        // The next connection starts a fresh epoch: a barrier for writes sent on this one would
        // reach a peer that never saw them, and its ack name an epoch no longer in the log
        // (found by the simulator, seed 53394).
        beginNextEpoch()
        writes.locallyFailed.removeAll()
        for id in Array(writes.pending.keys) { finishWriteIfDone(id, &effects) }
        for index in writes.flushes.indices { writes.flushes[index].awaitedEpochs.removeAll() }
        finishFlushes(&effects)
        receiver = ReceiveTracking()
        resync = ResyncProgress()
        handshake = HandshakeProgress()
        connectionGeneration &+= 1
        pingOutstanding = false
        var next = state
        next.connection = .wfConnection
        next.peerRole = .unknown
        if !(DiskState.inconsistent ... DiskState.outdated).contains(next.peerDisk) { next.peerDisk = .dUnknown }
        if previous.connection == .syncTarget || previous.connection == .pausedSyncT || previous.connection == .wfSyncUUID { next.disk = .inconsistent }
        // A Primary that loses its peer starts a new data generation (reference 3.2).
        if wasConnected, peerHadDisk, previous.role == .primary, previous.disk == .upToDate, superblock.uuids.bitmap == 0 {
            superblock.uuids.newCurrent(random: nextRandomUUID(), primary: true)
            startedCurrentGeneration = true
            effects.append(.log("new current UUID \(superblock.uuids.current.hex16) after losing the peer"))
        } else if wasConnected, previous.role == .primary, previous.disk == .upToDate,
                  previous.connection == .syncSource || previous.connection == .pausedSyncS, resyncMayHaveFinished {
            // Replica goes beyond DRBD 8.4 here: a Primary SyncSource that loses its peer starts a
            // new generation too (the sync UUID moves to history) when the target may have
            // finished the resync unseen — every block left had been sent — and been promoted
            // since; without this, both writing apart would not show as a split brain. An
            // interrupted resync still resumes (rules 52 and 72). A target that cannot have
            // finished (blocks left that were never sent) cannot be promoted (Inconsistent), and
            // no generation is started: rotating at every interruption pushed the target's
            // generation out of the two history slots after repeated ones ("Unrelated data",
            // simulator seed 711714).
            // A Secondary SyncSource has the same gap, closed at its promotion apart instead
            // (`startedCurrentGeneration` is false then): a new generation at every loss would
            // rotate the sync UUID out of the target's reach after repeated interruptions
            // ("Unrelated data").
            superblock.uuids.clearBitmapUUID()
            superblock.uuids.newCurrent(random: nextRandomUUID(), primary: true)
            startedCurrentGeneration = true
            effects.append(.log("new current UUID \(superblock.uuids.current.hex16) after losing the SyncTarget"))
        }
        counters.bitmapWrites += 1
        persistBitmap(&effects)
        persistSuperblock(&effects)
        setState(next, &effects)
        // Writes that waited for a resync answer: none comes now.
        retryWaitingWrites(&effects)
        // An attach in place that the peer never answered: the disk holds at best an older
        // copy of the peer's data and nothing says which blocks it lacks, so it goes again
        // (DRBD lets a disk whose handshake the connection broke go Diskless too) and the data
        // served stays the peer's. Kept, the disk would meet the peer again as this Primary's
        // own, equal in generation, and the sync handshake would make it the source of the
        // blocks it lacks (found by the simulator, seed 120594: the peer crashed before it
        // took in that this node had gone Diskless).
        if state.disk == .negotiating {
            becomeDiskless(reason: "the connection broke before the peer answered the attach", &effects)
        }
    }

    /// As a SyncSource: every out-of-sync block left has had its data sent (among the resync
    /// replies, or the replicated writes, the target has not answered yet), so the target may
    /// have finished without this node hearing it.
    var targetMayHaveFinished: Bool {
        var sent = Bitmap(bitCount: bitmap.bitCount)
        for range in resync.repliesAwaitingAnswer.values { sent.markOutOfSync(offset: range.lowerBound, length: Int64(range.count)) }
        for write in writes.pending.values where write.networkPending { sent.markOutOfSync(offset: write.offset, length: Int64(write.length)) }
        // More blocks left than sent: some were never sent (and this saves a copy of a large bitmap).
        guard bitmap.setCount <= sent.setCount else { return false }
        var left = bitmap
        for run in sent.runs() { left.clear(run) }
        return left.setCount == 0
    }

    /// The engine's source of UUIDs: a generator seeded by the runtime, so a simulation
    /// replays exactly.
    mutating func nextRandomUUID() -> UInt64 {
        entropy.next() & ~1
    }

}
