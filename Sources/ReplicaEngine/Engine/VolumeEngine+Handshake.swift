extension VolumeEngine {
    mutating func receivedFeatures(_ payload: FeaturesPayload, _ effects: inout [EngineEffect]) {
        let peerMax = payload.protocolMax == 0 ? payload.protocolMin : payload.protocolMax
        guard payload.protocolMin <= 1, peerMax >= 1 else {
            giveUp("incompatible protocol versions: peer speaks \(payload.protocolMin)...\(peerMax), this node 1...1", &effects)
            return
        }
        handshake.peerFeatures = payload
        decideIfReady(&effects)
    }

    mutating func receivedProtocolParameters(_ peer: ProtocolParametersPayload, _ effects: inout [EngineEffect]) {
        let mine = protocolParameters
        // discard-local on one side must be discard-remote on the other (DRBD numbers 5 and 6).
        let mirrored: UInt8 = peer.afterSB0 == 5 ? 6 : peer.afterSB0 == 6 ? 5 : peer.afterSB0
        var problems: [String] = []
        if peer.wireProtocol != mine.wireProtocol { problems.append("protocol") }
        if mirrored != mine.afterSB0 { problems.append("after-sb-0pri") }
        if peer.afterSB1 != mine.afterSB1 { problems.append("after-sb-1pri") }
        if peer.afterSB2 != mine.afterSB2 { problems.append("after-sb-2pri") }
        if peer.allowTwoPrimaries != mine.allowTwoPrimaries { problems.append("allow-two-primaries") }
        if peer.integrityAlgorithm != mine.integrityAlgorithm { problems.append("data-integrity-alg") }
        if peer.connectionFlags & 1 != 0, handshake.discardMyData { problems.append("discard-my-data (both sides)") }
        guard problems.isEmpty else {
            giveUp("incompatible \(problems.joined(separator: ", ")) settings", &effects)
            return
        }
        handshake.peerProtocol = peer
        decideIfReady(&effects)
    }

    mutating func receivedSizes(_ payload: SizesPayload, _ effects: inout [EngineEffect]) {
        handshake.peerSizes = payload
        let peerSize = Int64(clamping: payload.backingSize)
        // A node without a disk of its own uses the peer's size.
        let agreed = hasNoDisk ? peerSize : min(localSize, peerSize > 0 ? peerSize : localSize)
        if agreed != size {
            effects.append(.log("size agreed with the peer: \(agreed) bytes (local \(localSize), peer \(peerSize))"))
            size = agreed
            superblock.lastAgreedSizeSectors = UInt64(agreed / 512)
        }
        decideIfReady(&effects)
    }

    mutating func receivedUUIDs(_ payload: UUIDsPayload, _ effects: inout [EngineEffect]) {
        handshake.peerUUIDs = payload
        if handshake.decided {
            // The peer started a new generation while serving us: we follow it.
            if state.disk == .diskless { effectiveDataUUID = payload.uuids.current & ~1 }
            // Skip of the initial sync announced by the peer (new-current-uuid --clear-bitmap).
            if payload.flags & 8 != 0, superblock.uuids.current & ~1 == GenerationUUIDs.justCreatedValue {
                superblock.uuids = GenerationUUIDs(current: payload.uuids.current & ~1)
                bitmap.clearAll()
                persistBitmap(&effects)
                persistSuperblock(&effects)
                var next = state
                next.disk = .upToDate
                next.peerDisk = .upToDate
                setState(next, &effects)
            }
            return
        }
        decideIfReady(&effects)
    }

    mutating func receivedState(_ value: UInt32, _ effects: inout [EngineEffect]) {
        guard let peer = ResourceState(wireValue: value) else { return }
        let wasDecided = handshake.decided
        handshake.peerState = peer
        guard wasDecided else {
            decideIfReady(&effects)
            return
        }
        var next = state
        next.peerRole = peer.role
        next.peerDisk = peer.disk
        if refusesTwoPrimaries(state.role, peer.role, &effects) { return }
        if handshake.attachingInPlace {
            attachInPlaceAnswered(peer, &effects)
            return
        }
        // The peer, a Diskless Primary, attached its disk on this connection.
        if state.peerDisk == .diskless, peer.disk > .diskless, state.connection == .connected, state.disk == .upToDate {
            peerAttachedInPlace(peer, &effects)
            return
        }
        // The peer let its disk go (detach or an I/O error): a resync ends, and its writes
        // from now on exist only here.
        if peer.disk == .diskless, state.peerDisk != .diskless {
            let wasSource = state.connection == .syncSource || state.connection == .pausedSyncS
            let resyncMayHaveFinished = wasSource && (resync.targetReportedDone || targetMayHaveFinished)
            if state.connection.isResync { next.connection = .connected }
            resync = ResyncProgress()
            effects.append(.log("the peer is Diskless now"))
            setState(next, &effects)
            if resyncMayHaveFinished {
                startGenerationAfterUnseenResyncEnd(&effects)
            } else {
                startGenerationWithoutPeerDisk(&effects)
            }
            markUnconfirmedWritesOutOfSync()
            return
        }
        // The peer starts a full sync to us while connected (after its `primary --force`). (Not
        // to a node without a disk: a state the peer sent before it heard that this node let
        // its disk go — in a handshake's bitmap exchange, say — asks nothing of it; simulator
        // seed 3975 with meta-data faults.)
        if state.connection == .connected, peer.connection == .wfBitMapS, state.disk > .diskless {
            next.connection = .wfBitMapT
            next.disk = .inconsistent
            handshake.bitmapWordsReceived = 0
            bitmap.setAll()
            setState(next, &effects)
            return
        }
        // The peer invalidated its data: it waits for a full sync from us.
        if state.connection == .connected, peer.connection == .wfBitMapT, state.disk == .upToDate {
            startFullSyncAsSource(&effects)
            return
        }
        // The peer paused or resumed the sync.
        if state.connection.isResync, peer.userSyncPause != state.peerSyncPause {
            next.peerSyncPause = peer.userSyncPause
            setState(next, &effects)
            if !peer.userSyncPause { requestResyncBlocks(&effects) }
            return
        }
        // The target reports the end of the resync.
        if state.connection == .syncSource || state.connection == .pausedSyncS, peer.connection == .connected, peer.disk == .upToDate {
            if resync.repliesUnacknowledged > 0 {
                resync.targetReportedDone = true
            } else {
                finishResyncAsSource(&effects)
            }
            return
        }
        if state.connection == .connected || state.connection >= .syncSource {
            setState(next, &effects)
        }
    }

    /// DRBD's "lost contact to the peer's copy of the data" (reference 3.2): with a Primary on
    /// either side and no bitmap UUID yet, this node starts a new generation, so the peer's
    /// disk, when it returns, is resynced from the bitmap that marks every write since. Called
    /// when the peer's disk goes, and for each write of a Diskless peer (the first one that
    /// finds no bitmap UUID starts the generation).
    mutating func startGenerationWithoutPeerDisk(_ effects: inout [EngineEffect]) {
        guard state.disk == .upToDate, state.role == .primary || state.peerRole == .primary, superblock.uuids.bitmap == 0 else { return }
        superblock.uuids.newCurrent(random: nextRandomUUID(), primary: state.role == .primary)
        persistSuperblock(&effects)
        effects.append(.log("new current UUID \(superblock.uuids.current.hex16): the peer has no disk"))
        if state.connection >= .connected { effects.append(.send(.uuids(uuidsPayload()))) }
    }

    /// The SyncTarget let its disk go when it may have finished the resync unseen (it reported
    /// the end, or every block left had been sent): its meta-data may say it holds this
    /// generation, UpToDate, while the blocks written here from now on are not on it. As for a
    /// SyncSource that loses its target (``connectionLost``), a new generation starts and the
    /// sync UUID goes to history; without it, that disk, attached again, would be taken for
    /// this node's data by a Diskless Primary here (simulator seed 20718 with meta-data faults).
    mutating func startGenerationAfterUnseenResyncEnd(_ effects: inout [EngineEffect]) {
        guard state.disk == .upToDate, state.role == .primary || state.peerRole == .primary else { return }
        superblock.uuids.clearBitmapUUID()
        superblock.uuids.newCurrent(random: nextRandomUUID(), primary: state.role == .primary)
        startedCurrentGeneration = true
        persistSuperblock(&effects)
        effects.append(.log("new current UUID \(superblock.uuids.current.hex16): the SyncTarget has no disk now"))
        if state.connection >= .connected { effects.append(.send(.uuids(uuidsPayload()))) }
    }

    /// Gives the connection up when it would join two Primaries without
    /// `allow-two-primaries` ("Multiple primaries not allowed by config"); true if it did.
    mutating func refusesTwoPrimaries(_ local: Role, _ peer: Role, _ effects: inout [EngineEffect]) -> Bool {
        guard local == .primary, peer == .primary, !configuration.allowTwoPrimaries else { return false }
        giveUp(StateChangeError.twoPrimaries.description, &effects)
        return true
    }

    /// Gives up the connection for good: StandAlone, no reconnect (as DRBD does for
    /// incompatible settings, split brain and unrelated data).
    mutating func giveUp(_ reason: String, _ effects: inout [EngineEffect]) {
        effects.append(.log(reason))
        effects.append(.closeConnection(reason: reason, standAlone: true))
        handshake = HandshakeProgress()
        var next = state
        next.connection = .standAlone
        setState(next, &effects)
    }

    mutating func decideIfReady(_ effects: inout [EngineEffect]) {
        guard !handshake.decided, state.connection == .wfReportParams, handshake.peerFeatures != nil, handshake.peerProtocol != nil,
              handshake.peerSizes != nil, let peerUUIDs = handshake.peerUUIDs, let peerState = handshake.peerState else { return }
        handshake.decided = true
        if state.disk == .diskless || peerState.disk == .diskless {
            // No two sets of data to compare: the Diskless side uses the other's.
            if refusesTwoPrimaries(state.role, peerState.role, &effects) { return }
            if state.disk == .diskless {
                // A Diskless Primary's application has seen one generation: it must not be
                // served from another (older data on a peer that was away, say).
                let offered = peerUUIDs.uuids.current & ~1
                if state.role == .primary, effectiveDataUUID != 0, offered != effectiveDataUUID {
                    giveUp("Can only connect to data with current UUID=\(effectiveDataUUID.hex16)", &effects)
                    return
                }
                effectiveDataUUID = offered
                startedCurrentGeneration = false
            }
            // (A node whose peer has no disk shares its generation with no one: it stays its
            // own — simulator seed 921663: a split-brain victim connected for a moment to a
            // Diskless Primary that refused its data, forgot it had started its generation,
            // and a second promotion apart pushed the common one out of its bitmap UUID.)
            var next = state
            next.peerRole = peerState.role
            next.peerDisk = peerState.disk
            next.connection = .connected
            // (A new generation starts with the first write the Diskless peer sends: the peer
            // may yet refuse this connection, and nothing diverged so far.)
            setState(next, &effects)
            return
        }
        let result = syncHandshake(peerUUIDs: peerUUIDs, peerState: peerState)
        let peerDisk: DiskState = peerUUIDs.flags & 4 != 0 ? .inconsistent : peerState.disk
        if result.comparison.correctedLocal != superblock.uuids {
            superblock.uuids = result.comparison.correctedLocal
            persistSuperblock(&effects)
        }
        effects.append(.log("uuid_compare()=\(result.comparison.handshake) by rule \(result.comparison.rule)"))
        if result.splitBrainDetected {
            // DRBD calls initial-split-brain on detection, split-brain when no policy resolved it.
            effects.append(.callHandler("initial-split-brain"))
            effects.append(.log(result.automaticallyResolved ? "Split-Brain detected, automatically solved" : "Split-Brain detected!"))
        }
        var next = state
        next.peerRole = peerState.role
        next.peerDisk = peerDisk
        if result.demoteLocalPrimary {
            // call-pri-lost-after-sb chose this Primary as the victim: it gives up its role
            // (its data is overwritten) and the pri-lost-after-sb handler runs.
            next.role = .secondary
            effects.append(.log("Split-Brain: this Primary is the victim; demoted, its changes are discarded"))
            effects.append(.callHandler("pri-lost-after-sb"))
        }
        // Both Primary without a split brain in the UUIDs (one of them wrote nothing while
        // apart): DRBD's state check refuses the connected state, and so do we. (After a split
        // brain the policy decides: call-pri-lost-after-sb demotes the victim.)
        if case .disconnect = result.decision {} else if !result.splitBrainDetected, refusesTwoPrimaries(next.role, next.peerRole, &effects) {
            return
        }
        // A connection that goes on makes the generation UUIDs the pair's, negotiated: none was
        // started apart. (One given up — split brain, unrelated data — changes nothing: this
        // node's generation is still its own, seed 747 with meta-data faults.)
        if case .disconnect = result.decision {} else { startedCurrentGeneration = false }
        switch result.decision {
        case .disconnect(let reason):
            switch reason {
            case .splitBrain: effects.append(.callHandler("split-brain"))
            case .primaryWouldBecomeTarget where configuration.rrConflict == "call-pri-lost": effects.append(.callHandler("pri-lost"))
            case .primaryWouldBecomeTarget where configuration.rrConflict == "retry-connect":
                // DRBD 9's retry-connect: drop this attempt and try again, not StandAlone.
                effects.append(.log(reason.description + " (rr-conflict retry-connect: reconnecting)"))
                effects.append(.closeConnection(reason: reason.description, standAlone: false))
                return
            default: break
            }
            giveUp(reason.description, &effects)
            return
        case .noSync:
            next.connection = .connected
            if bitmap.setCount > 0 { effects.append(.log("no resync, but \(bitmap.setCount) bits set in the bitmap")) }
            setState(next, &effects)
        case .syncSource(let full):
            if full { bitmap.setAll() }
            next.connection = .wfBitMapS
            next.peerDisk = .inconsistent
            setState(next, &effects)
            sendBitmap(&effects)
        case .syncTarget(let full):
            if full { bitmap.setAll() }
            next.connection = .wfBitMapT
            next.disk = .inconsistent
            setState(next, &effects)
        }
    }

    /// The sync handshake of this node against the peer's UUIDs and state (reference 3.3–3.5):
    /// the UUID comparison, then the split-brain policies and the role checks.
    func syncHandshake(peerUUIDs: UUIDsPayload, peerState: ResourceState) -> SyncHandshakeResult {
        var input = UUIDHandshakeInput(local: superblock.uuids, peer: peerUUIDs.uuids)
        input.localCrashedPrimary = superblock.flags.contains(.crashedPrimary)
        input.peerCrashedPrimary = peerUUIDs.flags & 2 != 0
        input.localRole = state.role
        input.peerRole = peerState.role
        input.resolveConflicts = resolveConflicts
        input.localInconsistent = state.disk == .inconsistent
        input.peerInconsistent = peerUUIDs.flags & 4 != 0 || peerState.disk == .inconsistent
        let peerDisk: DiskState = peerUUIDs.flags & 4 != 0 ? .inconsistent : peerState.disk
        var context = SyncHandshakeContext(localDisk: state.disk, peerDisk: peerDisk, splitBrain: SplitBrainInput(
            localWasPrimaryAtSplit: superblock.uuids.bitmap & 1 == 1, peerWasPrimaryAtSplit: peerUUIDs.uuids.bitmap & 1 == 1,
            localChanges: UInt64(bitmap.setCount), peerChanges: peerUUIDs.dirtyBits,
            localRole: state.role, peerRole: peerState.role, resolveConflicts: resolveConflicts))
        context.afterSB0 = configuration.afterSB0
        context.afterSB1 = configuration.afterSB1
        context.afterSB2 = configuration.afterSB2
        context.rrConflict = configuration.rrConflict
        context.alwaysASBP = configuration.alwaysASBP
        context.discardMyData = handshake.discardMyData
        context.peerDiscardMyData = peerUUIDs.flags & 1 != 0
        return SyncHandshake.decide(input, context)
    }

    // MARK: - Bitmap exchange

    /// Sends the bitmap in order, each chunk as runs when that covers more words than the
    /// plain form would in one frame, or the same words in fewer bytes (the usual, mostly
    /// clear or mostly set bitmap), else as plain words — always plain with `use-rle no`.
    mutating func sendBitmap(_ effects: inout [EngineEffect]) {
        let plainWordsPerChunk = FrameLimits.bitmapChunkSize / 8
        let words = bitmap.words
        let totalBits = UInt64(bitmap.bitCount)
        var first = 0
        repeat {
            let compressed = BitmapRunLength.encode(words[first...], maximumBytes: FrameLimits.bitmapChunkSize)
            let plainEnd = min(first + plainWordsPerChunk, words.count)
            let plainWords = plainEnd - first
            if configuration.useRLE, compressed.wordCount > plainWords || (compressed.wordCount == plainWords && compressed.runs.count < plainWords * 8) {
                let end = first + compressed.wordCount
                effects.append(.send(.compressedBitmap(BitmapChunk(firstBit: UInt64(first * 64), totalBits: totalBits, words: Array(words[first..<end])))))
                first = end
            } else {
                effects.append(.send(.bitmap(BitmapChunk(firstBit: UInt64(first * 64), totalBits: totalBits, words: Array(words[first..<plainEnd])))))
                first = plainEnd
            }
        } while first < words.count
    }

    mutating func receivedBitmap(_ chunk: BitmapChunk, _ effects: inout [EngineEffect]) {
        guard state.connection == .wfBitMapS || state.connection == .wfBitMapT else {
            protocolViolation("bitmap chunk while \(state.connection)", &effects)
            return
        }
        let firstWord = Int(chunk.firstBit / 64)
        guard firstWord == handshake.bitmapWordsReceived else {
            protocolViolation("bitmap chunk at bit \(chunk.firstBit), expected bit \(handshake.bitmapWordsReceived * 64)", &effects)
            return
        }
        // OR the peer's bits into ours (only within our size).
        bitmap.formUnion(words: chunk.words, startingAtWord: firstWord)
        handshake.bitmapWordsReceived += chunk.words.count
        guard UInt64(handshake.bitmapWordsReceived) * 64 >= chunk.totalBits else { return }
        counters.bitmapWrites += 1
        persistBitmap(&effects)
        if state.connection == .wfBitMapT {
            sendBitmap(&effects)
            var next = state
            next.connection = .wfSyncUUID
            setState(next, &effects)
        } else {
            startResyncAsSource(&effects)
        }
    }
}
