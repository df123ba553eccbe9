/// What a node's world does for one volume's engine: its network, its disk, its clock and its
/// application. The daemon's runtime, the in-memory cluster and the simulator each provide one;
/// ``EngineDriver`` decides what the engine's effects mean, so all three run the same rules.
///
/// Calls come from inside an engine step and must not call back into the driver: what they
/// start comes back later, as a new event (a completed I/O, a frame, a timer).
public protocol EngineHost: AnyObject {
    /// Sends `frame` to the peer on its channel, in order with the frames sent before it;
    /// `held`: its data, kept out of memory (the frame's own data is empty then). Dropped when
    /// there is no connection.
    func send(_ frame: Frame, held: (any HeldDataStorage)?)
    /// Starts a local disk operation; `held`: the data of a ``LocalIO/writeHeld(offset:data:)``.
    /// Its completion goes to ``EngineDriver/completed(_:_:)`` (or, for a read for the peer
    /// kept out of memory, ``EngineDriver/completedHeldRead(_:_:)``).
    func startLocalIO(_ id: LocalIOID, _ io: LocalIO, held: (any HeldDataStorage)?)
    /// Completes an application request.
    func complete(_ id: RequestID, _ result: Result<[UInt8], RequestError>)
    /// Fires ``EngineEvent/timer(_:)`` after `milliseconds`.
    func armTimer(_ timer: EngineTimer, milliseconds: Int)
    /// Closes the connection in order (what was sent is delivered first); `standAlone`: no
    /// new one is made. Returns true when there was a connection to close.
    func closeConnection(reason: String, standAlone: Bool) -> Bool
    /// The engine's state changed.
    func stateChanged(_ state: ResourceState)
    /// A line for the log.
    func log(_ line: String)
    /// Runs the resource's handler of this name, without waiting for it.
    func callHandler(_ name: String)
    /// The engine let its disk go: once the local I/O already started has completed, the
    /// backing device and its meta-data are not used any more.
    func detachDisk(reason: String)
    /// A meta-data write failed (reported to the engine too, which decides what follows):
    /// for status and events.
    func metadataWriteFailed(_ write: MetadataWrite, _ error: BlockIOError)
}

extension EngineHost {
    public func metadataWriteFailed(_ write: MetadataWrite, _ error: BlockIOError) {
        log("meta-data write failed: \(write): \(error)")
    }
}

/// Runs one volume's ``VolumeEngine`` against an ``EngineHost``: the one interpreter of the
/// engine's effects, used by the daemon's runtime, the in-memory cluster and the simulator.
///
/// It keeps the rules every host must follow:
/// - Meta-data writes (superblock, bitmap pages, activity-log transactions) are done here, in
///   order, before the effects after them. When one fails, the meta-data writes and local
///   I/O after it in the same batch are not done; the engine hears of the failure first
///   (``EngineEvent/metadataWriteFailed(_:_:)``), then of each I/O not done as a failed one.
///   Frames, completions and timers of the batch still go: the engine's state already counts
///   on them. So no write is started whose activity-log transaction did not reach the disk,
///   and a bitmap page counts as saved only once written.
/// - ``HeldData`` handles are resolved here: the storage behind them is held in a
///   ``HeldDataStore``, taken when the engine asks to send or write it, and released after
///   every call when the engine no longer refers to it (``VolumeEngine/heldDataInUse``).
/// - Closing the connection (not StandAlone) makes the engine see the loss at once.
public struct EngineDriver {
    /// The engine.
    public private(set) var engine: VolumeEngine
    /// The volume's meta-data area (nil for a volume without a disk, and once detached).
    public private(set) var metadata: MetadataDevice?
    /// `md-flushes`: meta-data writes are flushed.
    public let metadataFlushes: Bool
    /// The world the effects act on. Not kept alive by the driver: its owner keeps both (a
    /// host usually owns its driver, and a strong reference back would keep both for ever).
    public unowned let host: any EngineHost
    private var held = HeldDataStore()
    private var depth = 0

    /// A driver for `engine`, whose meta-data is `metadata`.
    public init(engine: VolumeEngine, metadata: MetadataDevice?, metadataFlushes: Bool = true, host: any EngineHost) {
        self.engine = engine
        self.metadata = metadata
        self.metadataFlushes = metadataFlushes
        self.host = host
    }

    /// Storages of held data kept for the engine now.
    public var heldStorageCount: Int { held.count }

    // MARK: - Events

    /// Hands the engine `event` and carries out everything that follows from it.
    public mutating func handle(_ event: EngineEvent) {
        execute(engine.handle(event))
    }

    /// A frame from the peer; `held`: its data, received apart from it (the frame's own data
    /// is empty then).
    public mutating func received(_ frame: Frame, held storage: (any HeldDataStorage)? = nil) {
        guard let storage else { return handle(.frame(frame)) }
        let handle = held.hold(storage)
        self.handle(.heldFrame(frame, handle))
    }

    /// A local I/O the host started finished.
    public mutating func completed(_ id: LocalIOID, _ result: LocalIOResult) {
        handle(.localIOCompleted(id, result))
    }

    /// A ``LocalIO/readForPeer(offset:length:)`` finished with its data kept out of memory.
    public mutating func completedHeldRead(_ id: LocalIOID, _ storage: any HeldDataStorage) {
        let handle = held.hold(storage)
        self.handle(.heldReadCompleted(id, handle))
    }

    /// Runs an administrative command of the engine (`promote`, `connect`, ...) and carries
    /// out its effects; returns its refusal, with nothing done.
    @discardableResult
    public mutating func command(_ body: (inout VolumeEngine) -> Result<[EngineEffect], StateChangeError>) -> StateChangeError? {
        switch body(&engine) {
        case .success(let effects):
            execute(effects)
            return nil
        case .failure(let refusal):
            return refusal
        }
    }

    /// `attach` of a Diskless Primary on its live connection: `attached` (a fresh engine on
    /// the disk, with its meta-data) is taken in place (``VolumeEngine/attachInPlace(_:)``).
    /// The host starts using the disk first (it is asked for I/O right away).
    public mutating func attachInPlace(_ attached: VolumeEngine, metadata: MetadataDevice) -> Result<Void, VolumeEngine.AttachRefusal> {
        switch engine.attachInPlace(attached) {
        case .success(let effects):
            self.metadata = metadata
            execute(effects)
            return .success(())
        case .failure(let refusal):
            return .failure(refusal)
        }
    }

    /// Runs `body` on the engine where it is, without copying it (a read of `engine` through
    /// a class's stored driver copies the whole engine: a retain and release of each of its
    /// buffers). Mutating only so that the caller's access is in place; nothing changes.
    public mutating func inspect<Result>(_ body: (borrowing VolumeEngine) -> Result) -> Result { body(engine) }

    /// Changes the engine directly, without effects (tests: configuration mismatches).
    public mutating func modifyEngine(_ body: (inout VolumeEngine) -> Void) { body(&engine) }

    // MARK: - Effects

    /// Carries out `effects` in order, as the rules above say.
    public mutating func execute(_ effects: [EngineEffect]) {
        depth += 1
        defer {
            depth -= 1
            // Nothing held (small writes): no set of ids to build and no copy of the engine.
            if depth == 0, held.count > 0 {
                let inUse = engine.heldDataInUse
                held.release(keeping: inUse)
            }
        }
        var failure: (MetadataWrite, BlockIOError)?
        var notDone: [(LocalIOID, LocalIO, BlockIOError?)] = []
        for effect in effects {
            switch effect {
            case .writeSuperblock(let superblock):
                guard failure == nil else { continue }
                failure = writeMetadata(.superblock) { device, flush throws(MetadataError) in
                    try device.writeSuperblock(superblock, flush: flush)
                }
            case .writeBitmap(let runs):
                guard failure == nil else { continue }
                let superblock = engine.superblock
                failure = writeMetadata(.bitmapPages(runs.map(\.pages))) { device, flush throws(MetadataError) in
                    try device.writeBitmapPages(runs, superblock, flush: flush)
                }
            case .writeActivityLog(let transaction):
                guard failure == nil else { continue }
                let superblock = engine.superblock
                failure = writeMetadata(.activityLog(transaction.number)) { device, flush throws(MetadataError) in
                    try device.writeActivityLogTransaction(transaction, superblock, flush: flush)
                }
            case .localIO(let id, let io):
                guard failure == nil else {
                    notDone.append((id, io, nil))
                    continue
                }
                guard case .writeHeld(_, let data) = io else {
                    host.startLocalIO(id, io, held: nil)
                    continue
                }
                do {
                    host.startLocalIO(id, io, held: try held.take(data))
                } catch {
                    notDone.append((id, io, error))
                }
            case .send(let frame):
                host.send(frame, held: nil)
            case .sendHeld(let frame, let data):
                do {
                    host.send(frame, held: try held.take(data))
                } catch {
                    // The peer waits for this block: without it the connection cannot go on.
                    host.log("\(frame.type) frame not sent: \(error)")
                    if host.closeConnection(reason: "a resync block to send was lost: \(error)", standAlone: false) {
                        execute(engine.handle(.connectionLost))
                    }
                }
            case .complete(let id, let result):
                host.complete(id, result)
            case .armTimer(let timer, let milliseconds):
                host.armTimer(timer, milliseconds: milliseconds)
            case .stateChanged(let state):
                host.stateChanged(state)
            case .closeConnection(let reason, let standAlone):
                if host.closeConnection(reason: reason, standAlone: standAlone), !standAlone {
                    execute(engine.handle(.connectionLost))
                }
            case .log(let line):
                host.log(line)
            case .callHandler(let name):
                host.callHandler(name)
            case .detachDisk(let reason):
                host.detachDisk(reason: reason)
                metadata = nil
            }
        }
        if let (write, error) = failure {
            host.metadataWriteFailed(write, error)
            execute(engine.handle(.metadataWriteFailed(write, error)))
        }
        for (id, io, cause) in notDone {
            let error = cause ?? BlockIOError(operation: io.operation, offset: io.range.lowerBound, length: Int64(io.range.count), errno: 5,
                                              detail: "not done: a meta-data write before it failed")
            execute(engine.handle(.localIOCompleted(id, .failure(error))))
        }
    }

    /// Does one meta-data write; returns the failure, or nil. An engine without meta-data
    /// (`disk none`, or detached) asks for none; were it to, the write fails.
    private func writeMetadata(_ write: MetadataWrite, _ body: (MetadataDevice, Bool) throws(MetadataError) -> Void) -> (MetadataWrite, BlockIOError)? {
        guard let metadata else {
            return (write, BlockIOError(operation: .write, offset: 0, length: 0, errno: 19, detail: "no meta-data device (the volume is Diskless)"))
        }
        do {
            try body(metadata, metadataFlushes)
            return nil
        } catch {
            return (write, error.asBlockIOError)
        }
    }
}
