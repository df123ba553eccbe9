extension VolumeEngine {
    // MARK: - Source

    mutating func startResyncAsSource(_ effects: inout [EngineEffect]) {
        // A new sync UUID derived from the bitmap UUID (or random), announced to the target.
        let base = superblock.uuids.bitmap & ~1
        let syncUUID = base == 0 || base == GenerationUUIDs.justCreatedValue ? nextRandomUUID() : base &+ GenerationUUIDs.newBitmapOffset
        superblock.uuids.rotateIntoHistory(superblock.uuids.bitmap)
        superblock.uuids.bitmap = syncUUID & ~1
        // The bitmap UUID is the pair's sync UUID now, not a generation started apart.
        startedCurrentGeneration = false
        persistSuperblock(&effects)
        resync = ResyncProgress(total: bitmap.setCount)
        effects.append(.send(.syncUUID(syncUUID)))
        effects.append(.log("Began resync as SyncSource (will sync \(bitmap.setCount * 4) KB)"))
        var next = state
        next.connection = .syncSource
        next.peerDisk = .inconsistent
        setState(next, &effects)
    }

    mutating func receivedResyncRequest(_ request: BlockRequest, _ effects: inout [EngineEffect]) {
        let end = Int64(request.offset) + Int64(request.size)
        guard state.connection == .syncSource || state.connection == .pausedSyncS, end <= size else {
            effects.append(.send(.negativeResyncReply(BlockAck(offset: request.offset, blockID: request.blockID, size: request.size, sequence: 0))))
            return
        }
        resync.sourceReads[request.blockID] = (Int64(request.offset)..<end, false)
        submit(.readForPeer(offset: Int64(request.offset), length: Int(request.size)), purpose: .resyncRead(request), &effects)
    }

    /// Marks bytes `offset..<offset+length` out of sync. Resync data already asked for or sent
    /// for these blocks predates this change: its write or acknowledgement must not clear them
    /// (``ResyncProgress/markedLater``; found by the simulator, seed 11484).
    @discardableResult
    mutating func markOutOfSync(offset: Int64, length: Int64) -> Int64 {
        let range = offset..<(offset + length)
        for (id, requested) in resync.inFlight where requested.overlaps(range) { resync.markedLater[id, default: []].append(range) }
        for (id, sent) in resync.repliesAwaitingAnswer where sent.overlaps(range) { resync.markedLater[id, default: []].append(range) }
        return bitmap.markOutOfSync(offset: offset, length: length)
    }

    /// Clears `bits`, except those marked after resync block `blockID` was asked for or sent.
    mutating func clearUnlessMarkedLater(_ bits: Range<Int64>, blockID: UInt64) {
        var keep = (resync.markedLater.removeValue(forKey: blockID) ?? []).map { Bitmap.bits(forBytes: $0.lowerBound, length: Int64($0.count)) }
        keep.sort { $0.lowerBound < $1.lowerBound }
        var next = bits.lowerBound
        for kept in keep where kept.upperBound > next && kept.lowerBound < bits.upperBound {
            if kept.lowerBound > next { bitmap.clear(next..<kept.lowerBound) }
            next = max(next, kept.upperBound)
        }
        if next < bits.upperBound { bitmap.clear(next..<bits.upperBound) }
    }

    /// An application write to `range` is going to the peer: resync reads of it are stale.
    mutating func invalidateResyncReads(_ range: Range<Int64>) {
        for (id, read) in resync.sourceReads where read.range.overlaps(range) { resync.sourceReads[id]?.stale = true }
    }

    /// `held`: the block's data when the runtime kept it out of memory (``HeldData``).
    mutating func resyncReadDone(_ request: BlockRequest, _ result: LocalIOResult, held: HeldData?, _ effects: inout [EngineEffect]) {
        guard state.connection >= .connected, let read = resync.sourceReads[request.blockID] else { return }
        if read.stale, case .success = result {
            // Read again: the new read is ordered after the write that made this one stale.
            resync.sourceReads[request.blockID]?.stale = false
            submit(.readForPeer(offset: Int64(request.offset), length: Int(request.size)), purpose: .resyncRead(request), &effects)
            return
        }
        resync.sourceReads[request.blockID] = nil
        switch result {
        case .success(let data):
            let count = held?.count ?? data.count
            counters.diskRead += UInt64(count / 1024)
            counters.networkSent += UInt64(count / 1024)
            counters.resyncBytes += UInt64(count)
            resync.repliesUnacknowledged += 1
            resync.repliesAwaitingAnswer[request.blockID] = Int64(request.offset)..<(Int64(request.offset) + Int64(request.size))
            let reply = Frame.resyncReply(offset: request.offset, blockID: request.blockID, held == nil ? data : [])
            effects.append(held.map { .sendHeld(reply, $0) } ?? .send(reply))
        case .failure:
            effects.append(.send(.negativeResyncReply(BlockAck(offset: request.offset, blockID: request.blockID, size: request.size, sequence: 0))))
        }
    }

    /// The target wrote a block (resync or an application write during resync): in sync now.
    mutating func resyncWriteAcknowledged(_ ack: BlockAck, _ effects: inout [EngineEffect]) {
        // An application write whose local write failed stays marked: the peer has the data,
        // this disk does not (found by the simulator, seeds 1389 and 1398).
        let localFailed = ack.blockID & ResyncProgress.resyncIDFlag == 0 && writes.locallyFailed.remove(ack.blockID) != nil
        if ack.blockID & ResyncProgress.resyncIDFlag == 0 {
            if !localFailed { bitmap.clear(fullyCoveredBits(ack)) }
            acknowledged(ack, failed: false, inSync: false, &effects)
        } else {
            clearUnlessMarkedLater(fullyCoveredBits(ack), blockID: ack.blockID)
            resyncReplyAnswered(ack.blockID, &effects)
        }
    }

    /// The target answered a resync reply (wrote it, or failed to). Its report that the resync
    /// is done travels on the data channel, these answers on the meta channel: the source
    /// finishes when it has both, so the bitmap it writes then has no bit the target still
    /// clears (a crash later would resync those blocks again).
    mutating func resyncReplyAnswered(_ blockID: UInt64, _ effects: inout [EngineEffect]) {
        resync.repliesUnacknowledged = max(0, resync.repliesUnacknowledged - 1)
        resync.repliesAwaitingAnswer[blockID] = nil
        resync.markedLater[blockID] = nil
        if resync.targetReportedDone, resync.repliesUnacknowledged == 0,
           state.connection == .syncSource || state.connection == .pausedSyncS {
            finishResyncAsSource(&effects)
        }
    }

    mutating func finishResyncAsSource(_ effects: inout [EngineEffect]) {
        superblock.uuids.clearBitmapUUID()
        var next = state
        next.peerDisk = .upToDate
        completeResync(as: "SyncSource", next, &effects)
    }

    /// Persists UUIDs and bitmap, logs, and returns to Connected with `next`'s disks.
    mutating func completeResync(as role: String, _ next: ResourceState, _ effects: inout [EngineEffect]) {
        // The peer now has every block this node may have written before a crash.
        superblock.flags.remove(.crashedPrimary)
        persistSuperblock(&effects)
        counters.bitmapWrites += 1
        persistBitmap(&effects)
        effects.append(.log("Resync done as \(role) (\(resync.total * 4) KB)"))
        var connected = next
        connected.connection = .connected
        setState(connected, &effects)
    }

    // MARK: - Target

    mutating func receivedSyncUUID(_ uuid: UInt64, _ effects: inout [EngineEffect]) {
        guard state.connection == .wfSyncUUID else {
            protocolViolation("sync UUID while \(state.connection)", &effects)
            return
        }
        resync = ResyncProgress(total: bitmap.setCount)
        superblock.uuids.current = uuid & ~1
        superblock.uuids.bitmap = 0
        // The source moved its bitmap UUID into its history and took the sync UUID as its
        // bitmap UUID: what this node knows of the peer's UUIDs follows, for a comparison made
        // before the peer sends them again (an attach in place after this disk failed during
        // the resync; found by the simulator, seed 53958).
        if var peer = handshake.peerUUIDs {
            peer.uuids.rotateIntoHistory(peer.uuids.bitmap)
            peer.uuids.bitmap = uuid & ~1
            handshake.peerUUIDs = peer
        }
        // The blocks to sync reach the disk before the resync clears any of them: a crash of
        // this node mid-resync resumes from them (simulator seed 951557).
        counters.bitmapWrites += 1
        persistBitmap(&effects)
        persistSuperblock(&effects)
        effects.append(.log("Began resync as SyncTarget (will sync \(bitmap.setCount * 4) KB)"))
        var next = state
        next.connection = .syncTarget
        next.disk = .inconsistent
        setState(next, &effects)
        resync.controller = ResyncRateController(settings: configuration.resyncPacing)
        resyncTick(&effects)
        effects.append(.armTimer(.resync(generation: connectionGeneration), milliseconds: configuration.resyncTickMilliseconds))
    }

    /// The 100 ms step of the SyncTarget: the controller sets this step's budget from what
    /// arrived in the last one, then requests go out.
    mutating func resyncTick(_ effects: inout [EngineEffect]) {
        guard state.connection == .syncTarget else { return }
        let paused = state.userSyncPause || state.peerSyncPause
        // Application I/O competes when more than 64 sectors went to the disk besides the resync.
        let applicationBusy = resync.applicationBytesSinceStep > 64 * 512
        let budget = resync.controller.step(receivedBytes: resync.receivedSinceStep, applicationBusy: applicationBusy)
        resync.stepBudget = paused ? 0 : budget
        resync.receivedSinceStep = 0
        resync.applicationBytesSinceStep = 0
        requestResyncBlocks(&effects)
    }

    /// Asks the source for out-of-sync runs (up to 1 MiB each) within this step's budget and
    /// half of `max-buffers` in flight.
    mutating func requestResyncBlocks(_ effects: inout [EngineEffect]) {
        guard state.connection == .syncTarget, !state.userSyncPause, !state.peerSyncPause else { return }
        let maxBits = Int64(FrameLimits.maximumRequestSize) / Bitmap.bytesPerBit
        let inFlightLimit = resync.controller.inFlightLimitBytes
        var wrapped = false
        while resync.stepBudget > 0, Int64(resync.inFlightBytes) < inFlightLimit {
            guard let first = bitmap.nextSetBit(from: resync.cursor) else {
                // The pass reached the end. Bits behind the cursor (set again meanwhile, or
                // left by a refused request) are taken by the next pass, which starts once
                // this pass's answers are in: starting it while they are still in flight
                // would scan the whole bitmap past them at every answer (a 1 TiB disk's
                // bitmap is 32 MiB).
                if wrapped || resync.cursor == 0 || !resync.inFlight.isEmpty { break }
                resync.cursor = 0
                wrapped = true
                continue
            }
            let budgetBits = max(1, resync.stepBudget / Bitmap.bytesPerBit)
            let end = bitmap.nextClearBit(from: first, before: first + min(maxBits, budgetBits))
            // Skip bits already requested.
            if resync.inFlight.values.contains(where: { $0.overlaps(first * 4096..<end * 4096) }) {
                resync.cursor = end
                continue
            }
            let offset = first * Bitmap.bytesPerBit
            let length = min(end * Bitmap.bytesPerBit, size) - offset
            guard length > 0 else { break }
            let id = resync.nextBlockID
            resync.nextBlockID += 1
            resync.inFlight[id] = offset..<(offset + length)
            resync.inFlightBytes += Int(length)
            resync.stepBudget -= length
            resync.controller.requested(bytes: length)
            resync.cursor = end
            effects.append(.send(.resyncRequest(BlockRequest(offset: UInt64(offset), blockID: id, size: UInt32(length)))))
        }
        if resync.inFlight.isEmpty, bitmap.setCount == 0 {
            finishResyncAsTarget(&effects)
        }
    }

    mutating func receivedResyncReply(_ offset: UInt64, _ blockID: UInt64, _ data: [UInt8], _ effects: inout [EngineEffect]) {
        receivedResyncReply(offset, blockID, count: data.count, write: .write(offset: Int64(offset), data: data), &effects)
    }

    /// A resync reply of `count` bytes, written to the disk by `write` (its data in memory or
    /// held by the runtime).
    mutating func receivedResyncReply(_ offset: UInt64, _ blockID: UInt64, count: Int, write: LocalIO, _ effects: inout [EngineEffect]) {
        guard let range = resync.inFlight[blockID], range.lowerBound == Int64(offset), range.count == count else {
            // Answers to requests of a disk that went meanwhile have nowhere to go.
            if state.disk == .diskless, blockID & ResyncProgress.resyncIDFlag != 0 {
                return effects.append(.log("resync reply at \(offset)+\(count) dropped: the disk went since it was requested"))
            }
            protocolViolation("resync reply \(blockID) at \(offset)+\(count) matches no request", &effects)
            return
        }
        counters.networkReceived += UInt64(count / 1024)
        resync.receivedSinceStep += Int64(count)
        resync.controller.answered(bytes: Int64(count))
        submit(write, purpose: .resyncWrite(ResyncReply(offset: offset, blockID: blockID, size: UInt32(count))), &effects)
    }

    mutating func resyncWriteDone(_ reply: ResyncReply, _ result: LocalIOResult, _ effects: inout [EngineEffect]) {
        guard resync.inFlight.removeValue(forKey: reply.blockID) != nil else { return }
        resync.inFlightBytes -= Int(reply.size)
        let ack = BlockAck(offset: reply.offset, blockID: reply.blockID, size: reply.size, sequence: 0)
        switch result {
        case .success:
            counters.diskWritten += UInt64(reply.size / 1024)
            counters.resyncBytes += UInt64(reply.size)
            let bits = Bitmap.bits(forBytes: Int64(reply.offset), length: Int64(reply.size))
            clearUnlessMarkedLater(bits, blockID: reply.blockID)
            resyncClears.cleared(bits)
            effects.append(.send(.resyncWriteAck(ack)))
        case .failure:
            resync.markedLater[reply.blockID] = nil
            resync.failedBlocks += Int64(reply.size / 4096)
            effects.append(.send(.negativeAck(ack)))
        }
        // Writes that waited for this answer go first: requests made after them are answered
        // with their data.
        retryWaitingWrites(&effects)
        requestResyncBlocks(&effects)
    }

    mutating func resyncRequestFailed(_ ack: BlockAck, _ effects: inout [EngineEffect]) {
        guard let range = resync.inFlight.removeValue(forKey: ack.blockID) else { return }
        resync.markedLater[ack.blockID] = nil
        resync.inFlightBytes -= range.count
        resync.controller.answered(bytes: Int64(range.count))
        resync.failedBlocks += Int64(range.count / 4096)
        effects.append(.log("resync read failed on the source at \(range.lowerBound)+\(range.count)"))
        retryWaitingWrites(&effects)
    }

    mutating func finishResyncAsTarget(_ effects: inout [EngineEffect]) {
        // Take over the source's generation (reference 3.2), then move the bitmap UUID to history.
        if let source = handshake.peerUUIDs?.uuids {
            let syncUUID = superblock.uuids.current
            superblock.uuids = GenerationUUIDs(current: source.current & ~1, bitmap: syncUUID,
                                               historyStart: source.historyStart, historyEnd: source.historyEnd)
            superblock.uuids.clearBitmapUUID()
            superblock.uuids.setRoleBit(primary: state.role == .primary)
        }
        var next = state
        next.disk = .upToDate
        completeResync(as: "SyncTarget", next, &effects)
        effects.append(.send(.uuids(uuidsPayload())))
    }
}
