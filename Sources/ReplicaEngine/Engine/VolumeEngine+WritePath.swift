extension VolumeEngine {
    // MARK: - Application requests (Primary)

    mutating func applicationRequest(_ id: RequestID, _ request: ApplicationRequest, _ effects: inout [EngineEffect]) {
        guard state.role == .primary else {
            effects.append(.complete(id, .failure(.notPrimary)))
            return
        }
        // A Diskless Primary, or a Primary SyncTarget, reads its peer's UpToDate data.
        let readsFromPeer = peerCopyIsTheOnlyGoodOne && peerServesData
        guard state.disk == .upToDate || state.connection == .syncSource || state.connection == .pausedSyncS || readsFromPeer else {
            effects.append(.complete(id, .failure(.noUpToDateData)))
            return
        }
        switch request {
        case .read(let offset, let length):
            guard validRange(offset, Int64(length)) else {
                effects.append(.complete(id, .failure(.invalidRange(offset: offset, length: Int64(length), size: size))))
                return
            }
            if readsFromPeer {
                startRemoteRead(id, offset: offset, length: length, &effects)
            } else {
                submit(.read(offset: offset, length: length), purpose: .applicationRead(id, offset: offset, length: length), &effects)
            }
        case .write(let offset, let data):
            guard validRange(offset, Int64(data.count)), !data.isEmpty else {
                effects.append(.complete(id, .failure(.invalidRange(offset: offset, length: Int64(data.count), size: size))))
                return
            }
            startWrite(id, offset, data, &effects)
        case .discard(let offset, let length):
            guard validRange(offset, length) else {
                effects.append(.complete(id, .failure(.invalidRange(offset: offset, length: length, size: size))))
                return
            }
            // Replicated as zeroes: both disks read back the same.
            startWrite(id, offset, [UInt8](repeating: 0, count: Int(length)), &effects)
        case .flush:
            startFlush(id, &effects)
        }
    }

    func validRange(_ offset: Int64, _ length: Int64) -> Bool {
        offset >= 0 && length >= 0 && offset % 512 == 0 && length % 512 == 0 && offset <= size && length <= size - offset
            && length <= Int64(FrameLimits.maximumRequestSize)
    }

    /// An application write: activity log, epoch, the data to the peer, the local write. Where
    /// only the peer's disk holds good data (a Diskless node; a Primary SyncTarget, whose own
    /// disk is Inconsistent) it completes when the peer has written it, whatever the protocol:
    /// protocols A and B acknowledge a write that is on a good local disk and on its way to the
    /// peer; without one, "sent" or "received" would acknowledge a write that is on no good
    /// disk, lost without a word if the peer's disk then fails it (simulator seeds 5611 and
    /// 6100894 with meta-data faults).
    mutating func startWrite(_ id: RequestID, _ offset: Int64, _ data: [UInt8], _ effects: inout [EngineEffect]) {
        let diskless = state.disk == .diskless
        if diskless, !replicating {
            effects.append(.complete(id, .failure(.noUpToDateData)))
            return
        }
        if !diskless, waitsForResyncAnswer(offset..<(offset + Int64(data.count))) {
            writes.waitingWrites.append((id, offset, data))
            return
        }
        let extents = ActivityLog.extents(offset: offset, length: Int64(data.count))
        if !diskless, !activate(extents, &effects) {
            writes.waitingWrites.append((id, offset, data))
            return
        }
        if writes.currentEpochClosed || writes.sentInCurrentEpoch >= configuration.maxEpochSize {
            closeEpoch(&effects)
        }
        let replicate = replicating
        var write = PendingWrite(offset: offset, length: data.count, epoch: writes.currentEpoch, extents: extents,
                                 networkPending: replicate && configuration.wireProtocol != "A", sentTick: writes.requestTick)
        write.peerCopyOnly = peerCopyIsTheOnlyGoodOne
        if state.connection == .wfBitMapS {
            // The bitmap already went to the peer: tell it about this block (DRBD's P_OUT_OF_SYNC).
            bitmap.markOutOfSync(offset: offset, length: Int64(data.count))
            effects.append(.send(.outOfSync(offset: UInt64(offset), size: UInt32(data.count))))
        }
        if replicate {
            invalidateResyncReads(offset..<(offset + Int64(data.count)))
            writes.sequence &+= 1
            var flags: UInt32 = 0
            // Where the peer's disk holds the only good copy (this node Diskless, or a Primary
            // SyncTarget whose own disk is Inconsistent), the write completes on its write ack.
            let peerHoldsTheOnlyGoodCopy = peerCopyIsTheOnlyGoodOne
            if configuration.wireProtocol == "B", !peerHoldsTheOnlyGoodCopy { flags |= DataFlags.sendReceiveAck }
            if configuration.wireProtocol == "C" || peerHoldsTheOnlyGoodCopy { flags |= DataFlags.sendWriteAck }
            if state.connection == .syncSource || state.connection == .pausedSyncS { flags |= DataFlags.maySetInSync | DataFlags.sendWriteAck }
            if flags & DataFlags.sendWriteAck != 0 { write.networkPending = true }
            effects.append(.send(.data(DataHeader(offset: UInt64(offset), blockID: id, sequence: writes.sequence, flags: flags), data)))
            counters.networkSent += UInt64(data.count / 1024)
            writes.sentInCurrentEpoch += 1
            writes.transferLog[writes.currentEpoch, default: []].append(offset..<(offset + Int64(data.count)))
        } else if state.connection != .wfBitMapS {
            // Not replicated: the peer misses this write.
            bitmap.markOutOfSync(offset: offset, length: Int64(data.count))
        }
        if diskless {
            write.localDone = true
            write.peerCopyOnly = true
            writes.pending[id] = write
            finishWriteIfDone(id, &effects)
        } else {
            writes.pending[id] = write
            submit(.write(offset: offset, data: data), purpose: .applicationWrite(id), &effects)
        }
    }

    /// Ends the current epoch: a barrier goes to the peer if the epoch carried writes.
    mutating func closeEpoch(_ effects: inout [EngineEffect]) {
        if writes.sentInCurrentEpoch > 0, replicating {
            effects.append(.send(.barrier(epoch: writes.currentEpoch)))
            writes.barrierSentTick[writes.currentEpoch] = writes.requestTick
        }
        beginNextEpoch()
    }

    /// The next writes go in a new epoch, empty and open.
    mutating func beginNextEpoch() {
        writes.currentEpoch &+= 1
        writes.sentInCurrentEpoch = 0
        writes.currentEpochClosed = false
    }

    mutating func applicationWriteDone(_ id: RequestID, _ result: LocalIOResult, _ effects: inout [EngineEffect]) {
        guard var write = writes.pending[id] else { return }
        write.localDone = true
        if case .failure(let error) = result {
            // The peer may hold the new data while our disk does not: the blocks differ, and
            // the bitmap must say so (a later resync makes both sides equal again).
            markOutOfSync(offset: write.offset, length: Int64(write.length))
            let peerHoldsIt = peerHoldsUpToDateCopy
            if replicating {
                writes.locallyFailed.insert(id)
                // Tell the peer too: with our disk gone, only its bitmap will remember.
                effects.append(.send(.outOfSync(offset: UInt64(write.offset), size: UInt32(write.length))))
            }
            // on-io-error detach: the peer's copy answers for the write, as DRBD completes a
            // request whose network part went well.
            let detachedNow = localIOFailed(error, &effects)
            if !(detachedNow && peerHoldsIt) { write.localError = error }
        } else {
            counters.diskWritten += UInt64(write.length / 1024)
        }
        writes.pending[id] = write
        activityLog.release(write.extents)
        finishWriteIfDone(id, &effects)
        retryWaitingWrites(&effects)
    }

    /// Starts the writes that waited for an activity-log slot or a resync answer again, each
    /// checked as a new request (the state may have changed while it waited).
    mutating func retryWaitingWrites(_ effects: inout [EngineEffect]) {
        let waiting = writes.waitingWrites
        writes.waitingWrites.removeAll()
        for (id, offset, data) in waiting { applicationRequest(id, .write(offset: offset, data: data), &effects) }
    }

    mutating func finishWriteIfDone(_ id: RequestID, _ effects: inout [EngineEffect]) {
        guard let write = writes.pending[id], write.localDone, !write.networkPending else { return }
        writes.pending[id] = nil
        if write.epoch == writes.currentEpoch { writes.currentEpochClosed = true }
        if let error = write.localError {
            effects.append(.complete(id, .failure(.ioError(error))))
        } else {
            effects.append(.complete(id, .success([])))
        }
    }

    mutating func applicationReadDone(_ id: RequestID, offset: Int64, length: Int, _ result: LocalIOResult, _ effects: inout [EngineEffect]) {
        switch result {
        case .success(let data):
            counters.diskRead += UInt64(data.count / 1024)
            effects.append(.complete(id, .success(data)))
        case .failure(let error):
            // on-io-error detach: read it from the peer instead, if it has UpToDate data.
            if localIOFailed(error, &effects), state.disk == .diskless, peerServesData {
                startRemoteRead(id, offset: offset, length: length, &effects)
            } else {
                effects.append(.complete(id, .failure(.ioError(error))))
            }
        }
    }

    mutating func startFlush(_ id: RequestID, _ effects: inout [EngineEffect]) {
        var awaited = Set(writes.transferLog.keys)
        if writes.sentInCurrentEpoch > 0, replicating {
            awaited.insert(writes.currentEpoch)
            closeEpoch(&effects)
        }
        if state.disk == .diskless {
            // Only the peer's disk holds the data: the flush is its barrier acks.
            var flush = PendingFlush(id: id, localDone: true, awaitedEpochs: awaited)
            flush.peerCopyOnly = true
            writes.flushes.append(flush)
            finishFlushes(&effects)
            return
        }
        var flush = PendingFlush(id: id, awaitedEpochs: replicating ? awaited : [])
        flush.peerCopyOnly = peerCopyIsTheOnlyGoodOne
        writes.flushes.append(flush)
        submit(.flush, purpose: .applicationFlush(id), &effects)
    }

    mutating func applicationFlushDone(_ id: RequestID, _ result: LocalIOResult, _ effects: inout [EngineEffect]) {
        guard let index = writes.flushes.firstIndex(where: { $0.id == id }) else { return }
        writes.flushes[index].localDone = true
        if case .failure(let error) = result {
            // Detached: the peer's barrier acks (awaited before the flush completes) answer for it.
            let peerHoldsIt = peerHoldsUpToDateCopy
            if !(localIOFailed(error, &effects) && peerHoldsIt) { writes.flushes[index].localError = error }
        }
        finishFlushes(&effects)
    }

    mutating func finishFlushes(_ effects: inout [EngineEffect]) {
        if writes.peerOnlyWriteLost, let index = writes.flushes.firstIndex(where: { $0.peerCopyOnly && $0.localDone && $0.awaitedEpochs.isEmpty }) {
            writes.peerOnlyWriteLost = false
            writes.flushes[index].localError = BlockIOError(operation: .flush, offset: 0, length: 0, errno: 5,
                                                            detail: "a write completed before the peer, which holds the only disk, failed it")
        }
        let ready = writes.flushes.filter { $0.localDone && $0.awaitedEpochs.isEmpty }
        writes.flushes.removeAll { $0.localDone && $0.awaitedEpochs.isEmpty }
        for flush in ready {
            effects.append(.complete(flush.id, flush.localError.map { .failure(.ioError($0)) } ?? .success([])))
        }
    }

    // MARK: - Acknowledgements (Primary)

    mutating func acknowledged(_ ack: BlockAck, failed: Bool, inSync: Bool, _ effects: inout [EngineEffect]) {
        if inSync { bitmap.clear(Bitmap.bits(forBytes: Int64(ack.offset), length: Int64(ack.size)).clamped(to: fullyCoveredBits(ack))) }
        // The peer failed to write: the range differs, whether or not the write still waits
        // (under protocol A and B it completed before this answer; found by the simulator,
        // seed 82).
        if failed { markOutOfSync(offset: Int64(ack.offset), length: Int64(ack.size)) }
        if failed, peerCopyIsTheOnlyGoodOne, writes.pending[ack.blockID]?.networkPending != true { writes.peerOnlyWriteLost = true }
        guard var write = writes.pending[ack.blockID] else { return }
        write.networkPending = false
        if failed, write.peerCopyOnly {
            // The peer's disk was the only one: the write is nowhere.
            write.localError = BlockIOError(operation: .write, offset: write.offset, length: Int64(write.length), errno: 5,
                                            detail: "the peer, which holds the only disk, could not write it")
        }
        writes.pending[ack.blockID] = write
        finishWriteIfDone(ack.blockID, &effects)
    }

    /// Bits entirely covered by an acknowledged range (partial blocks stay marked).
    func fullyCoveredBits(_ ack: BlockAck) -> Range<Int64> {
        let first = (Int64(ack.offset) + 4095) / 4096
        let end = (Int64(ack.offset) + Int64(ack.size)) / 4096
        return first..<max(first, end)
    }

    mutating func barrierAcknowledged(epoch: UInt32, setSize: UInt32, _ effects: inout [EngineEffect]) {
        guard let ranges = writes.transferLog[epoch] else {
            protocolViolation("barrier ack for unknown epoch \(epoch)", &effects)
            return
        }
        guard ranges.count == Int(setSize) else {
            protocolViolation("barrier ack for epoch \(epoch) counts \(setSize) writes, \(ranges.count) were sent", &effects)
            return
        }
        writes.transferLog[epoch] = nil
        writes.barrierSentTick[epoch] = nil
        for index in writes.flushes.indices { writes.flushes[index].awaitedEpochs.remove(epoch) }
        finishFlushes(&effects)
    }

    // MARK: - Receiving replicated writes (Secondary)

    mutating func receivedData(_ header: DataHeader, _ data: [UInt8], _ effects: inout [EngineEffect]) {
        receivedData(header, count: data.count, write: .write(offset: Int64(header.offset), data: data), &effects)
    }

    /// A replicated write of `count` bytes, written to the disk by `write` (its data in memory
    /// or held by the runtime).
    mutating func receivedData(_ header: DataHeader, count: Int, write localWrite: LocalIO, _ effects: inout [EngineEffect]) {
        guard state.connection >= .connected else {
            protocolViolation("data frame before the handshake finished", &effects)
            return
        }
        guard state.role == .secondary || configuration.allowTwoPrimaries else {
            protocolViolation("the peer replicates a write to a Primary (two Primaries are not allowed)", &effects)
            return
        }
        guard Int64(header.offset) + Int64(count) <= size else {
            protocolViolation("data at \(header.offset)+\(count) past the end of the \(size)-byte device", &effects)
            return
        }
        counters.networkReceived += UInt64(count / 1024)
        // Application writes compete with a resync this node pulls (c-min-rate).
        resync.applicationBytesSinceStep += Int64(count)
        if header.flags & DataFlags.sendReceiveAck != 0 {
            effects.append(.send(.receiveAck(BlockAck(offset: header.offset, blockID: header.blockID, size: UInt32(count), sequence: header.sequence))))
        }
        receiver.epochs[receiver.epochs.count - 1].received += 1
        var write = ReceivedWrite(header: header, size: UInt32(count), epoch: UInt32(receiver.epochs.count - 1))
        if state.peerDisk == .diskless, state.disk > .diskless, count > 0 {
            write.activityLogExtents = holdOnlyCopy(offset: Int64(header.offset), length: Int64(count), &effects)
        }
        if state.disk == .diskless {
            // No disk to write to (reference 5.8): a negative ack, the data dropped.
            peerWriteDone(write, .failure(Self.disklessError(.write(offset: Int64(header.offset), data: []))), &effects)
        } else if count == 0 {
            peerWriteDone(write, .success([]), &effects)
        } else {
            submit(localWrite, purpose: .peerWrite(write), &effects)
        }
    }

    mutating func peerWriteDone(_ write: ReceivedWrite, _ result: LocalIOResult, _ effects: inout [EngineEffect]) {
        if let extents = write.activityLogExtents { activityLog.release(extents) }
        let header = write.header
        let ack = BlockAck(offset: header.offset, blockID: header.blockID, size: write.size, sequence: header.sequence)
        switch result {
        case .success:
            counters.diskWritten += UInt64(write.size / 1024)
            if header.flags & DataFlags.maySetInSync != 0, state.connection == .syncTarget || state.connection == .pausedSyncT {
                bitmap.clear(fullyCoveredBits(ack))
                effects.append(.send(.resyncWriteAck(ack)))
            } else if header.flags & DataFlags.sendWriteAck != 0 {
                effects.append(.send(.writeAck(ack)))
            }
        case .failure(let error):
            markOutOfSync(offset: Int64(header.offset), length: Int64(write.size))
            // The mark reaches the disk: the peer clears its own once a later write of the
            // block is acknowledged, and only this bitmap remembers it then (seed 951557).
            counters.bitmapWrites += 1
            persistBitmap(&effects)
            effects.append(.send(.negativeAck(ack)))
            _ = localIOFailed(error, &effects)
        }
        // Epochs finish in order: the write belongs to the oldest epoch still open that has room.
        if let index = receiver.epochs.firstIndex(where: { $0.completed < $0.received }) {
            receiver.epochs[index].completed += 1
        }
        flushCompletedEpochs(&effects)
    }

    /// A write of a Diskless peer: this disk will hold the only copy, so the block is marked
    /// for the peer's disk and, as DRBD does, covered by the activity log first (after a crash
    /// here the replay marks it again); the first such write starts a new generation. Returns
    /// the extents held, or nil when the log is full and the bitmap was written instead.
    mutating func holdOnlyCopy(offset: Int64, length: Int64, _ effects: inout [EngineEffect]) -> ClosedRange<UInt32>? {
        startGenerationWithoutPeerDisk(&effects)
        bitmap.markOutOfSync(offset: offset, length: length)
        let extents = ActivityLog.extents(offset: offset, length: length)
        guard activate(extents, &effects) else {
            counters.bitmapWrites += 1
            persistBitmap(&effects)
            return nil
        }
        return extents
    }

    /// Makes `extents` hot in the activity log before a write to them: a transaction when one
    /// is needed (the bitmap first, if extents were evicted). False when every slot is busy.
    mutating func activate(_ extents: ClosedRange<UInt32>, _ effects: inout [EngineEffect]) -> Bool {
        switch activityLog.activate(extents) {
        case .busy:
            return false
        case .needsTransaction(let evicted):
            if !evicted.isEmpty {
                counters.bitmapWrites += 1
                persistBitmap(&effects)
            }
            counters.activityLogWrites += 1
            effects.append(.writeActivityLog(activityLog.makeTransaction()))
        case .hot:
            break
        }
        return true
    }

    mutating func receivedBarrier(_ epoch: UInt32, _ effects: inout [EngineEffect]) {
        receiver.epochs[receiver.epochs.count - 1].number = epoch
        receiver.epochs.append(ReceiveEpoch())
        flushCompletedEpochs(&effects)
    }

    /// The oldest epoch whose barrier arrived and whose writes all completed is flushed.
    mutating func flushCompletedEpochs(_ effects: inout [EngineEffect]) {
        guard let first = receiver.epochs.first, let number = first.number, !first.flushing, first.completed == first.received else { return }
        receiver.epochs[0].flushing = true
        submit(.flush, purpose: .receiverFlush(number), &effects)
    }

    mutating func receiverFlushDone(_ epoch: UInt32, _ result: LocalIOResult, _ effects: inout [EngineEffect]) {
        guard let first = receiver.epochs.first, first.number == epoch else { return }
        effects.append(.send(.barrierAck(epoch: epoch, setSize: UInt32(first.received))))
        receiver.epochs.removeFirst()
        // Frames held behind the barrier may proceed now, in order.
        let held = receiver.held
        receiver.held.removeAll()
        for (frame, data) in held { received(frame, held: data, &effects) }
        flushCompletedEpochs(&effects)
    }
}
