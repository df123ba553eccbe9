/// A write of the application on the Primary, from submission to completion.
struct PendingWrite: Sendable, Equatable {
    var offset: Int64
    var length: Int
    var epoch: UInt32
    var extents: ClosedRange<UInt32>
    var localDone = false
    var localError: BlockIOError?
    /// Waiting for the peer's receive- or write-ack (protocol B or C).
    var networkPending: Bool
    /// The request-timeout period in which it was sent.
    var sentTick: UInt64 = 0
    /// Written while the peer's copy is the only good one: by a Diskless node (nothing is
    /// written here), or by a Primary whose disk the peer is resyncing.
    var peerCopyOnly = false
}

/// A flush of the application: done when the local flush finished and every epoch before it
/// was acknowledged by the peer (so with protocol C the data is on both disks).
struct PendingFlush: Sendable, Equatable {
    var id: RequestID
    var localDone = false
    var localError: BlockIOError?
    /// Issued while the peer's copy is the only good one (a Diskless node, whose flush is the
    /// peer's alone, or a Primary SyncTarget).
    var peerCopyOnly = false
    /// The epochs that must be barrier-acked first.
    var awaitedEpochs: Set<UInt32>
}

/// The Primary's side of the write path: epochs, the transfer log and pending requests.
struct WriteTracking: Sendable {
    var pending: [RequestID: PendingWrite] = [:]
    var currentEpoch: UInt32 = 1
    /// Writes of the current epoch sent to the peer.
    var sentInCurrentEpoch = 0
    /// A write of the current epoch completed: the next write starts a new epoch.
    var currentEpochClosed = false
    /// Epochs sent but not yet barrier-acked, with the ranges written in them.
    var transferLog: [UInt32: [Range<Int64>]] = [:]
    var sequence: UInt32 = 0
    var flushes: [PendingFlush] = []
    /// Writes waiting for a free activity-log slot, or (on a Primary SyncTarget) for the
    /// answer to a resync request they overlap.
    var waitingWrites: [(RequestID, Int64, [UInt8])] = []
    /// The request-timeout period in which each epoch's barrier was sent.
    var barrierSentTick: [UInt32: UInt64] = [:]
    /// Application writes whose local write failed while the peer may still confirm them as
    /// in sync: their blocks must stay marked.
    var locallyFailed: Set<RequestID> = []
    /// Request-timeout periods elapsed on this connection.
    var requestTick: UInt64 = 0
    /// A write whose only good copy was the peer's (a Diskless node, a Primary SyncTarget) was
    /// completed (protocol A or B) before the peer failed to write it: the next flush reports
    /// the loss, as fsync reports a lost write-back.
    var peerOnlyWriteLost = false
}

/// One write epoch received by the Secondary.
struct ReceiveEpoch: Sendable, Equatable {
    var number: UInt32?
    var received = 0
    var completed = 0
    var flushing = false
}

/// The Secondary's side: epochs in receive order, and frames held back while an epoch's
/// barrier waits for its writes and flush (this keeps write-after-write order across epochs).
struct ReceiveTracking: Sendable {
    var epochs: [ReceiveEpoch] = [ReceiveEpoch()]
    /// With their data when the runtime holds it (``EngineEvent/heldFrame(_:_:)``).
    var held: [(frame: Frame, data: HeldData?)] = []

    /// True while the oldest epoch has its barrier and is not yet acked.
    var holding: Bool { epochs.count > 1 }
}

/// What the connect handshake has exchanged so far.
struct HandshakeProgress: Sendable {
    var sentParameters = false
    var peerFeatures: FeaturesPayload?
    var peerProtocol: ProtocolParametersPayload?
    var peerSizes: SizesPayload?
    var peerUUIDs: UUIDsPayload?
    var peerState: ResourceState?
    var decided = false
    var discardMyData = false
    /// This Diskless Primary attached its disk on the live connection and waits for the
    /// peer's answer (``VolumeEngine/attachInPlace(_:)``).
    var attachingInPlace = false
    /// Bits of the peer's bitmap received during WFBitMapS/T.
    var bitmapWordsReceived = 0
}

/// A running resync.
struct ResyncProgress: Sendable {
    /// Bits set when the resync started (for progress).
    var total: Int64 = 0
    /// Next bit the target looks at.
    var cursor: Int64 = 0
    /// Target: requests in flight by block id.
    var inFlight: [UInt64: Range<Int64>] = [:]
    var inFlightBytes = 0
    /// Resync request ids carry the top bit (DRBD's ID_SYNCER), so their acks are never taken
    /// for the ack of an application write with the same number.
    var nextBlockID: UInt64 = ResyncProgress.resyncIDFlag | 1
    static let resyncIDFlag: UInt64 = 1 << 63
    var failedBlocks: Int64 = 0
    /// Source: resync reads in flight; `stale` when an application write to the range was
    /// sent to the peer after the read started (the read is then repeated, so the reply never
    /// carries data older than a write the target already has).
    var sourceReads: [UInt64: (range: Range<Int64>, stale: Bool)] = [:]
    /// Source: resync replies sent that the target has not answered yet, and whether the
    /// target already reported the resync done (the source then finishes at the last answer).
    var repliesUnacknowledged = 0
    var targetReportedDone = false
    /// Source: the range of each resync reply sent and not answered yet, by block id.
    var repliesAwaitingAnswer: [UInt64: Range<Int64>] = [:]
    /// Ranges marked out of sync after the resync data for them was asked for (target) or
    /// sent (source), by block id: an out-of-sync frame, a failed write. That data predates
    /// the change, so its write (target) or acknowledgement (source) leaves these bits set;
    /// the target asks for them again.
    var markedLater: [UInt64: [Range<Int64>]] = [:]
    /// Target: the pacing controller, the bytes it still allows in this step, and what
    /// happened since the last step (resync data received, application I/O competing).
    var controller = ResyncRateController(settings: .init())
    var stepBudget: Int64 = 0
    var receivedSinceStep: Int64 = 0
    var applicationBytesSinceStep: Int64 = 0
}
