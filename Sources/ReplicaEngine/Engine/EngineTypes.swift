/// Identifies an application request (the caller's tag, echoed in its completion).
public typealias RequestID = UInt64
/// Identifies a local I/O the engine asked the runtime to perform.
public typealias LocalIOID = UInt64

/// An application request to a volume.
public enum ApplicationRequest: Sendable, Equatable {
    /// Read `length` bytes at `offset`.
    case read(offset: Int64, length: Int)
    /// Write `data` at `offset`.
    case write(offset: Int64, data: [UInt8])
    /// Make every completed write durable (as the protocol defines it: C = on both disks).
    case flush
    /// Discard a range: it reads back as zeroes afterwards, on every node.
    case discard(offset: Int64, length: Int64)
}

/// Why an application request failed.
public enum RequestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The node is not Primary (a Secondary refuses application I/O, as DRBD's EROFS).
    case notPrimary
    /// No UpToDate data is reachable.
    case noUpToDateData
    /// Offset or length outside the device or not 512-byte aligned.
    case invalidRange(offset: Int64, length: Int64, size: Int64)
    /// The local disk failed.
    case ioError(BlockIOError)
    /// The engine is shutting down or the volume was detached.
    case aborted

    public var description: String {
        switch self {
        case .notPrimary: "the resource is Secondary: application I/O needs the Primary role"
        case .noUpToDateData: "no UpToDate data is reachable"
        case .invalidRange(let offset, let length, let size): "range \(offset)+\(length) is not 512-byte aligned inside the \(size)-byte device"
        case .ioError(let error): "local I/O failed: \(error)"
        case .aborted: "request aborted"
        }
    }
}

/// A local disk operation the runtime performs and reports back with ``EngineEvent/localIOCompleted(_:_:)``.
public enum LocalIO: Sendable, Equatable {
    case read(offset: Int64, length: Int)
    /// A read whose data goes to the peer unchanged (a resync block): the runtime may keep it
    /// out of memory and answer ``EngineEvent/heldReadCompleted(_:_:)``, or answer as for a
    /// read. Either way the data sent is at least as recent as the disk was when this I/O
    /// was started (writes started after it may show in it, and are sent after it).
    case readForPeer(offset: Int64, length: Int)
    case write(offset: Int64, data: [UInt8])
    /// A write of data the runtime received and kept out of memory (``HeldData``: a resync
    /// block spliced from the socket), written from where it is held.
    case writeHeld(offset: Int64, data: HeldData)
    case flush
    case discard(offset: Int64, length: Int64)

    /// The kind of operation, as a failure names it.
    public var operation: BlockIOError.Operation {
        switch self {
        case .read, .readForPeer: .read
        case .write, .writeHeld: .write
        case .flush: .flush
        case .discard: .discard
        }
    }

    /// The byte range the I/O touches (empty for a flush).
    public var range: Range<Int64> {
        switch self {
        case .read(let offset, let length), .readForPeer(let offset, let length): offset..<(offset + Int64(length))
        case .write(let offset, let data): offset..<(offset + Int64(data.count))
        case .writeHeld(let offset, let data): offset..<(offset + Int64(data.count))
        case .discard(let offset, let length): offset..<(offset + length)
        case .flush: 0..<0
        }
    }
}

/// The outcome of a local I/O.
public enum LocalIOResult: Sendable, Equatable {
    /// Done; reads carry their data.
    case success([UInt8])
    /// The disk failed.
    case failure(BlockIOError)
}

/// What the runtime tells the engine.
public enum EngineEvent: Sendable, Equatable {
    /// An application request (only on a Primary).
    case request(RequestID, ApplicationRequest)
    /// A local I/O finished.
    case localIOCompleted(LocalIOID, LocalIOResult)
    /// A ``LocalIO/readForPeer(offset:length:)`` finished with its data held by the runtime.
    case heldReadCompleted(LocalIOID, HeldData)
    /// Both channels to the peer are up; `resolveConflicts` if this node accepted the meta channel.
    case connectionEstablished(resolveConflicts: Bool)
    /// The connection broke (or was closed).
    case connectionLost
    /// A frame from the peer.
    case frame(Frame)
    /// A frame from the peer whose data the runtime received and keeps out of memory (the
    /// frame's own data is empty): a resync reply's block spliced from the socket.
    case heldFrame(Frame, HeldData)
    /// Ask for more resync blocks now (as the resync timer does; the in-memory runtime sends
    /// it when idle).
    case resyncTick
    /// A timer armed with ``EngineEffect/armTimer(_:milliseconds:)`` fired.
    case timer(EngineTimer)
    /// A meta-data write asked for by an effect failed: nothing it stood for happened (a
    /// bitmap page written is saved only once its write succeeded). DRBD detaches on any
    /// meta-data I/O error, whatever `on-io-error` says (`call-local-io-error` runs its
    /// handler first).
    case metadataWriteFailed(MetadataWrite, BlockIOError)
}

/// A meta-data write the engine asked for (``EngineEffect/writeSuperblock(_:)``,
/// ``EngineEffect/writeBitmap(_:)``, ``EngineEffect/writeActivityLog(_:)``), as a failure names it.
public enum MetadataWrite: Sendable, Equatable, CustomStringConvertible {
    case superblock
    /// The pages of a bitmap save.
    case bitmapPages([Range<Int>])
    /// An activity-log transaction, by number.
    case activityLog(UInt32)

    public var description: String {
        switch self {
        case .superblock: "superblock"
        case .bitmapPages(let runs): "bitmap pages " + runs.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ", ")
        case .activityLog(let number): "activity-log transaction \(number)"
        }
    }
}

/// Timers of the engine; each carries the connection generation it was armed for, so a timer
/// of an earlier connection is ignored.
public enum EngineTimer: Sendable, Equatable, Hashable {
    /// Time to send a ping (`ping-int`).
    case ping(generation: UInt64)
    /// The ping's answer is due (`ping-timeout`).
    case pingTimeout(generation: UInt64)
    /// A sync target asks for more blocks.
    case resync(generation: UInt64)
    /// Every `timeout`: requests the peer has not answered for `ko-count` of these are overdue.
    case requestTimeout(generation: UInt64)
}

/// What the engine asks the runtime to do, in order. Meta-data writes (AL transaction,
/// bitmap, superblock) must be durable before the effects that follow them run; when one
/// fails, the meta-data writes and local I/O after it are not done (the I/O is reported to the
/// engine as failed) and the engine hears of the failure (``EngineEvent/metadataWriteFailed(_:_:)``)
/// before anything else — ``EngineDriver`` is where these rules are kept.
public enum EngineEffect: Sendable, Equatable {
    /// Send a frame to the peer (on its channel).
    case send(Frame)
    /// Send a frame whose data is `HeldData` (the frame's own data is empty), in order with
    /// the frames sent before and after it.
    case sendHeld(Frame, HeldData)
    /// Perform a local disk operation and report it back.
    case localIO(LocalIOID, LocalIO)
    /// Complete an application request.
    case complete(RequestID, Result<[UInt8], RequestError>)
    /// Persist the superblock (UUIDs, flags, sizes).
    case writeSuperblock(Superblock)
    /// Persist the bitmap: write these encoded pages, the ones changed since the last save
    /// (``Bitmap/unsavedPageImages``; all of them for a bitmap never saved).
    case writeBitmap([BitmapPageRun])
    /// Persist an activity-log transaction.
    case writeActivityLog(ActivityLogTransaction)
    /// Fire ``EngineEvent/timer(_:)`` after this many milliseconds.
    case armTimer(EngineTimer, milliseconds: Int)
    /// The state changed (for status, events and the demo).
    case stateChanged(ResourceState)
    /// Close the connection; `standAlone` if the engine gave up (no reconnect).
    case closeConnection(reason: String, standAlone: Bool)
    /// A line for the log.
    case log(String)
    /// The engine is Diskless from here on: once the local I/O already submitted has
    /// completed, stop using the backing device and its meta-data (`detach`, or
    /// `on-io-error detach` after a failure). The engine asks for no more disk work.
    case detachDisk(reason: String)
    /// Run the resource's handler of this name (`split-brain`, `pri-lost-after-sb`, ...), if
    /// the resource file defines one. The engine does not wait for it.
    case callHandler(String)
}

/// The settings a volume engine runs with (from the resource file).
public struct EngineConfiguration: Sendable, Equatable {
    /// `protocol`: "A", "B" or "C".
    public var wireProtocol: String = "C"
    /// `allow-two-primaries`.
    public var allowTwoPrimaries = false
    /// `after-sb-0pri`, `after-sb-1pri`, `after-sb-2pri`.
    public var afterSB0: AfterSplitBrain0Pri = .disconnect
    public var afterSB1: AfterSplitBrain1Pri = .disconnect
    public var afterSB2: AfterSplitBrain2Pri = .disconnect
    /// `rr-conflict`.
    public var rrConflict = "disconnect"
    /// `always-asbp`: the after-split-brain policies apply when only history UUIDs match too.
    public var alwaysASBP = false
    /// `use-rle`: the bitmap exchange may send run-length encoded chunks.
    public var useRLE = true
    /// `data-integrity-alg`.
    public var dataIntegrityAlgorithm = ""
    /// `max-epoch-size`.
    public var maxEpochSize = 2048
    /// `al-extents`.
    public var activityLogExtents = 1237
    /// `resync-rate`, `c-plan-ahead`, `c-fill-target`, `c-delay-target`, `c-max-rate`,
    /// `c-min-rate` and `max-buffers`: how fast a SyncTarget requests data.
    public var resyncPacing = ResyncRateController.Settings()
    /// Interval of the resync timer (DRBD's 100 ms step).
    public var resyncTickMilliseconds = ResyncRateController.stepMilliseconds
    /// `ping-int` in milliseconds: a ping goes out this often on an established connection.
    public var pingIntervalMilliseconds = 10_000
    /// `ping-timeout` in milliseconds: a peer that does not answer a ping within it is lost.
    public var pingTimeoutMilliseconds = 500
    /// `timeout` in milliseconds: the period of the request-timeout check.
    public var timeoutMilliseconds = 6_000
    /// `ko-count`: a request unanswered for this many `timeout` periods drops the connection
    /// (0: never).
    public var koCount = 7
    /// `on-io-error`: what a failed local I/O does (DRBD 8.4's default: detach).
    public var onIOError: OnIOError = .detach

    /// Creates the defaults of DRBD 8.4.
    public init() {}

    /// DRBD's wire number of the protocol (A 1, B 2, C 3).
    var protocolNumber: UInt8 { wireProtocol == "A" ? 1 : wireProtocol == "B" ? 2 : 3 }
}

/// `on-io-error` (reference 1, disk options): what the node does when its backing device fails
/// an I/O.
public enum OnIOError: String, Sendable, Equatable {
    /// Report the error to the application (or mark the block, for the peer's writes) and
    /// keep the disk.
    case passOn = "pass_on"
    /// Run the `local-io-error` handler, then detach.
    case callLocalIOError = "call-local-io-error"
    /// Detach: the node goes Diskless and serves its I/O through the peer.
    case detach
}
