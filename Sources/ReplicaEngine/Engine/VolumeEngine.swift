/// The replication state machine of one volume, sans I/O: it takes ``EngineEvent``s and
/// returns ``EngineEffect``s, and never touches a socket, file, thread or clock (DESIGN.md
/// principle 1). A runtime executes the effects with real disks and sockets; tests and the
/// simulator execute them in memory.
public struct VolumeEngine: Sendable {
    /// Settings from the resource file.
    public var configuration: EngineConfiguration
    /// The current state (roles, connection, disks).
    public internal(set) var state: ResourceState
    /// The persistent part: UUIDs, flags, sizes (what the superblock holds).
    public internal(set) var superblock: Superblock
    /// The out-of-sync bitmap (one bit per 4 KiB).
    public internal(set) var bitmap: Bitmap
    /// Bytes of data the volume exposes (agreed with the peer when connected).
    public internal(set) var size: Int64
    /// Counters for status output (`ns nr dw dr al bm lo pe ua ap ep oos` of /proc/drbd).
    public internal(set) var counters = EngineCounters()

    var activityLog: ActivityLog
    var nextIOID: LocalIOID = 1
    /// What each local I/O in flight is for, and the connection it belongs to.
    var ioPurpose: [LocalIOID: (purpose: IOPurpose, connection: UInt64)] = [:]
    /// Bits resync writes cleared that no flush has made durable yet (``persistBitmap(_:)``).
    var resyncClears = ResyncClearsBeforeFlush()
    var ordering = IOOrdering()
    var writes = WriteTracking()
    var receiver = ReceiveTracking()
    var handshake = HandshakeProgress()
    var resync = ResyncProgress()
    var resolveConflicts = false
    var localSize: Int64
    /// Configured without a disk (`disk none`): never had one, has no meta-data to write.
    public internal(set) var hasNoDisk = false
    /// Counts connections; timers carry it so that stale ones are ignored.
    var connectionGeneration: UInt64 = 0
    /// A ping was sent and its answer has not arrived.
    var pingOutstanding = false
    /// Why the engine is closing the connection (shown as the transient connection state
    /// when the loss is processed); NetworkFailure when the transport reports it.
    var lossCause: ConnectionState?
    /// The engine's UUID generator (see ``nextRandomUUID()``).
    var entropy: SeededGenerator
    /// True once the engine let its backing device go (`detach`, `on-io-error detach`): no
    /// meta-data or disk work any more. (An engine always starts attached, so Diskless means
    /// detached.)
    public var isDetached: Bool { state.disk == .diskless }
    /// Reads of a Diskless node waiting for the peer's data reply, by request.
    var remoteReads: [RequestID: Range<Int64>] = [:]
    /// The generation a Diskless node's application has been using (DRBD's `ed_uuid`): its
    /// own at detach, then the peer's. A Diskless Primary connects only to that data.
    var effectiveDataUUID: UInt64 = 0
    /// This node started its current data generation itself, apart from its peer (promoted
    /// apart, or lost its peer as Primary: a new current UUID while not connected, since the
    /// last handshake); a Primary that restarts after a crash counts too (its superblock says
    /// it was Primary). A promotion apart over a bitmap UUID of a generation not started here
    /// — the sync UUID of a resync it served, or anything after a restart as Secondary —
    /// starts a new one.
    var startedCurrentGeneration = false
    /// The meta-data this engine meant its disk to hold when it let the disk go after a
    /// meta-data write failed (its superblock — UUIDs and flags as they were with the disk —
    /// and bitmap): the disk's own may lag behind. An attach of the same disk in this process
    /// takes them (``VolumeAttachment``'s `carrying`). Nil when every meta-data write went.
    public internal(set) var unwrittenMetadata: (superblock: Superblock, bitmap: Bitmap)?

    /// An engine for an attached disk: `superblock` and `bitmap` as read from the meta-data
    /// (after the activity log was applied), `dataSize` the usable bytes. `entropySeed` seeds the
    /// generator of new UUIDs (the runtime passes random bits; a simulation passes its seed).
    public init(configuration: EngineConfiguration, superblock: Superblock, bitmap: Bitmap, dataSize: Int64, entropySeed: UInt64) {
        self.entropy = SeededGenerator(seed: entropySeed)
        self.configuration = configuration
        self.superblock = superblock
        self.bitmap = bitmap
        self.localSize = dataSize
        self.size = dataSize
        activityLog = ActivityLog(slotCount: configuration.activityLogExtents)
        var disk = superblock.flags.attachDiskState
        // Without fencing, Consistent data counts as UpToDate (reference 2.4).
        if disk == .consistent { disk = .upToDate }
        state = ResourceState(role: .secondary, peerRole: .unknown, connection: .standAlone, disk: disk, peerDisk: .dUnknown)
        if superblock.flags.contains(.peerOutdated) { state.peerDisk = .outdated }
        startedCurrentGeneration = superblock.flags.contains(.primaryIndicator) && superblock.uuids.bitmap != 0
    }

    /// Handles one event and returns what the runtime must do, in order.
    public mutating func handle(_ event: EngineEvent) -> [EngineEffect] {
        var effects: [EngineEffect] = []
        switch event {
        case .request(let id, let request):
            applicationRequest(id, request, &effects)
        case .localIOCompleted(let id, let result):
            localIOCompleted(id, result, &effects)
        case .heldReadCompleted(let id, let held):
            localIOCompleted(id, .success([]), held: held, &effects)
        case .connectionEstablished(let resolve):
            connectionEstablished(resolveConflicts: resolve, &effects)
        case .connectionLost:
            connectionLost(&effects)
        case .frame(let frame):
            received(frame, &effects)
        case .heldFrame(let frame, let held):
            received(frame, held: held, &effects)
        case .resyncTick:
            resyncTick(&effects)
        case .timer(let timer):
            timerFired(timer, &effects)
        case .metadataWriteFailed(let write, let error):
            metadataWriteFailed(write, error, &effects)
        }
        return effects
    }

    /// The failure of disk work asked for after the disk was let go (ENODEV).
    static func disklessError(_ io: LocalIO) -> BlockIOError {
        BlockIOError(operation: io.operation, offset: io.range.lowerBound, length: Int64(io.range.count), errno: 19,
                    detail: "the volume is Diskless")
    }

    // MARK: - Shared helpers

    mutating func submit(_ io: LocalIO, purpose: IOPurpose, _ effects: inout [EngineEffect]) {
        let id = nextIOID
        nextIOID += 1
        ioPurpose[id] = (purpose, connectionGeneration)
        if isDetached {
            // No disk any more: the I/O fails at once (callers route a Diskless node's work
            // to the peer before this; this is the guard behind them).
            localIOCompleted(id, .failure(Self.disklessError(io)), &effects)
            return
        }
        if case .flush = io { resyncClears.flushSubmitted(id) }
        if ordering.admit(id, io) {
            effects.append(.localIO(id, io))
        }
    }

    /// `held`: the data of a ``LocalIO/readForPeer(offset:length:)`` that the runtime kept.
    mutating func localIOCompleted(_ id: LocalIOID, _ result: LocalIOResult, held: HeldData? = nil, _ effects: inout [EngineEffect]) {
        guard let (purpose, connection) = ioPurpose.removeValue(forKey: id) else {
            effects.append(.log("completion of unknown local I/O \(id) ignored"))
            return
        }
        var succeeded = false
        if case .success = result { succeeded = true }
        let pageBits = Int64(Bitmap.wordsPerPage * 64)
        for bits in resyncClears.completed(id, succeeded: succeeded) where !bits.isEmpty {
            // Durable now: the next save writes these pages with the bits cleared.
            bitmap.markPagesUnsaved(Int(bits.lowerBound / pageBits)..<Int((bits.upperBound - 1) / pageBits + 1))
        }
        let ready = ordering.finish(id)
        if isDetached {
            // Held back behind this one, but the disk is gone now: they fail.
            for (readyID, io) in ready { localIOCompleted(readyID, .failure(Self.disklessError(io)), &effects) }
        } else {
            for (readyID, io) in ready { effects.append(.localIO(readyID, io)) }
        }
        if connection != connectionGeneration, purpose.belongsToConnection {
            staleConnectionIOCompleted(purpose, result)
            return
        }
        switch purpose {
        case .applicationWrite(let request): applicationWriteDone(request, result, &effects)
        case .applicationRead(let request, let offset, let length): applicationReadDone(request, offset: offset, length: length, result, &effects)
        case .applicationFlush(let request): applicationFlushDone(request, result, &effects)
        case .peerWrite(let write): peerWriteDone(write, result, &effects)
        case .receiverFlush(let epoch): receiverFlushDone(epoch, result, &effects)
        case .resyncRead(let request): resyncReadDone(request, result, held: held, &effects)
        case .resyncWrite(let reply): resyncWriteDone(reply, result, &effects)
        case .peerRead(let request): peerReadDone(request, result, &effects)
        }
    }

    /// An I/O done for a connection that has ended since: nothing is sent. A write of the
    /// peer's data that failed leaves this disk without it, so its blocks are marked; one that
    /// succeeded changes nothing (the peer marked every write it had not seen acknowledged,
    /// and a resync block is asked for again on the new connection).
    mutating func staleConnectionIOCompleted(_ purpose: IOPurpose, _ result: LocalIOResult) {
        if case .peerWrite(let write) = purpose, let extents = write.activityLogExtents { activityLog.release(extents) }
        guard case .failure = result else { return }
        switch purpose {
        case .peerWrite(let write): bitmap.markOutOfSync(offset: Int64(write.header.offset), length: Int64(write.size))
        case .resyncWrite(let reply): bitmap.markOutOfSync(offset: Int64(reply.offset), length: Int64(reply.size))
        default: break
        }
    }

    /// Applies a state change, recomputes the meta-data flags and announces it.
    mutating func setState(_ new: ResourceState, _ effects: inout [EngineEffect], persist: Bool = true) {
        let sanitized = StateRules.sanitize(new)
        guard sanitized != state else { return }
        state = sanitized
        var flags = superblock.flags
        flags.remove([.primaryIndicator, .connectedIndicator, .consistent, .wasUpToDate, .peerOutdated])
        if state.role == .primary { flags.insert(.primaryIndicator) }
        if state.connection > .wfReportParams { flags.insert(.connectedIndicator) }
        if state.disk > .inconsistent { flags.insert(.consistent) }
        if state.disk > .outdated { flags.insert(.wasUpToDate) }
        if (DiskState.inconsistent ... DiskState.outdated).contains(state.peerDisk) { flags.insert(.peerOutdated) }
        if flags != superblock.flags {
            superblock.flags = flags
            if persist, !isDetached { effects.append(.writeSuperblock(superblock)) }
        }
        effects.append(.stateChanged(state))
        if state.connection >= .wfReportParams, state.connection != .wfReportParams || handshake.sentParameters {
            effects.append(.send(.state(state.wireValue)))
        }
    }

    /// True when writes must be replicated to the peer.
    /// A Primary that is to become SyncTarget replicates during the bitmap exchange too: its
    /// peer is the source, and a write kept only here would be overwritten by the resync.
    var replicating: Bool {
        state.connection >= .connected && state.peerDisk >= .inconsistent && state.connection != .wfBitMapS
            && (state.connection != .wfBitMapT || state.role == .primary)
    }

    /// Requests in flight, as `/proc/drbd` counts them: `lo` local I/O, `pe` answers awaited
    /// from the peer, `ua` answers this node owes the peer, `ap` application requests, `ep`
    /// write epochs open on the receive side.
    public var inFlight: (local: Int, peer: Int, unacknowledged: Int, application: Int, epochs: Int) {
        // Counted in place (read at every step for status: no array of copies).
        var peerPending = resync.inFlight.count
        for write in writes.pending.values where write.networkPending { peerPending += 1 }
        let owed = receiver.epochs.reduce(0) { $0 + $1.received - $1.completed } + resync.sourceReads.count
        return (ordering.count, peerPending, owed, writes.pending.count + writes.flushes.count, receiver.epochs.count)
    }

    /// Persists the UUIDs (and flags) now. A detached engine has no meta-data to write: its
    /// last write was when it let the disk go, and its in-memory copy (Diskless flags) must
    /// not reach the disk.
    mutating func persistSuperblock(_ effects: inout [EngineEffect]) {
        guard !isDetached else { return }
        effects.append(.writeSuperblock(superblock))
    }

    /// Persists the bitmap now (not on a detached engine): the effect carries the encoded
    /// pages changed since the last save, which the runtime writes before any later effect;
    /// they count as saved unless the runtime reports the write failed
    /// (``EngineEvent/metadataWriteFailed(_:_:)``, handled before any other event, marks them
    /// unsaved again). (Not the bitmap itself: the engine's next change would copy all its
    /// words while the effect held them — 32 MiB for 1 TiB of data, at every activity-log
    /// eviction.)
    mutating func persistBitmap(_ effects: inout [EngineEffect]) {
        guard !isDetached else { return }
        // Bits cleared by resync writes that no flush covers yet are saved as set (and
        // cleared again here, which leaves their pages unsaved for the save after the flush).
        // Worked in runs of clear bits, not bit by bit: a long resync without a flush can
        // leave most of a large disk in these ranges.
        var shown: [Range<Int64>] = []
        for (bits, _) in resyncClears.ranges {
            let end = min(bits.upperBound, bitmap.bitCount)
            var next = bits.lowerBound
            while next < end {
                let clear = bitmap.nextClearBit(from: next, before: end)
                guard clear < end else { break }
                let set = min(bitmap.nextSetBit(from: clear) ?? end, end)
                shown.append(clear..<set)
                next = set
            }
        }
        for run in shown { bitmap.set(run) }
        effects.append(.writeBitmap(bitmap.unsavedPageImages))
        bitmap.markPagesSaved()
        for run in shown { bitmap.clear(run) }
    }
}

/// Counters in the units `/proc/drbd` shows them (KiB for ns/nr/dw/dr).
public struct EngineCounters: Sendable, Equatable {
    /// Network send, KiB.
    public var networkSent: UInt64 = 0
    /// Network receive, KiB.
    public var networkReceived: UInt64 = 0
    /// Disk write, KiB.
    public var diskWritten: UInt64 = 0
    /// Disk read, KiB.
    public var diskRead: UInt64 = 0
    /// Activity-log transactions written.
    public var activityLogWrites: UInt64 = 0
    /// Bitmap writes.
    public var bitmapWrites: UInt64 = 0
    /// Resync data bytes sent (as SyncSource) or written (as SyncTarget), since attach.
    public var resyncBytes: UInt64 = 0
}

/// Why a local I/O was issued.
enum IOPurpose: Sendable, Equatable {
    case applicationWrite(RequestID)
    case applicationRead(RequestID, offset: Int64, length: Int)
    case applicationFlush(RequestID)
    case peerWrite(ReceivedWrite)
    case receiverFlush(UInt32)
    case resyncRead(BlockRequest)
    case resyncWrite(ResyncReply)
    case peerRead(BlockRequest)

    /// I/O done for the peer: its answer means nothing on a later connection (the
    /// peer's block IDs and epochs start again there).
    var belongsToConnection: Bool {
        switch self {
        case .peerWrite, .receiverFlush, .resyncRead, .resyncWrite, .peerRead: true
        case .applicationWrite, .applicationRead, .applicationFlush: false
        }
    }
}

/// A replicated write received from the peer, waiting for its local completion.
struct ReceivedWrite: Sendable, Equatable {
    var header: DataHeader
    var size: UInt32
    var epoch: UInt32
    /// Activity-log extents held while it is written (this node holds the only disk).
    var activityLogExtents: ClosedRange<UInt32>?
}

/// A resync block received by the sync target.
struct ResyncReply: Sendable, Equatable {
    var offset: UInt64
    var blockID: UInt64
    var size: UInt32
}

extension VolumeEngine {
    /// Bits to sync when the current resync started (for progress).
    public var resyncTotalBits: Int64 { resync.total }
    /// What the resync-rate controller of a SyncTarget wants, KiB/s (`want:` in /proc/drbd).
    public var resyncWantKiBPerSecond: Int64 { resync.controller.wantKiBPerSecond }
}
