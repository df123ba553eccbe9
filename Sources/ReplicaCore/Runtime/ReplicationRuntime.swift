import Foundation
import Logging
import Synchronization

/// Executes a ``VolumeEngine``'s effects with real parts: the disk through a ``BlockTarget``
/// on an I/O queue, meta-data writes in order, frames through a ``Transport``'s link, timers.
///
/// Engine events run one at a time on a serial queue; blocking disk I/O runs on a concurrent
/// I/O queue; the transport's receive threads only enqueue. Nothing blocks Swift's cooperative
/// thread pool.
public final class ReplicationRuntime: PeerLinkHandler, @unchecked Sendable {
    // All mutable state below is confined to `engineQueue`, except what the Mutexes guard.
    private var engine: VolumeEngine
    private let disk: any BlockTarget
    private let metadata: MetadataDevice
    private let transport: any Transport
    private let engineQueue: DispatchQueue
    private let ioQueue: DispatchQueue
    /// One sender queue per channel: frames keep their order within a channel, and the
    /// engine never blocks in `sendmsg` while the peer drains its socket.
    private let dataSendQueue: DispatchQueue
    private let metaSendQueue: DispatchQueue
    private var link: (any PeerLink)?
    private var completions: [RequestID: @Sendable (Result<[UInt8], RequestError>) -> Void] = [:]
    private var nextRequestID: RequestID = 1
    private var transportRunning = false
    private let published: Mutex<Snapshot>
    private let logger: Logger
    /// `md-flushes`: flush after meta-data writes.
    public let metadataFlushes: Bool
    /// The resource's `handlers { }`.
    public let handlers: HandlerRunner

    /// What status commands read without waiting for the engine.
    public struct Snapshot: Sendable {
        /// The state.
        public var state: ResourceState
        /// Counters.
        public var counters: EngineCounters
        /// Out-of-sync bits.
        public var outOfSyncBits: Int64
        /// Bits to sync when the current resync started.
        public var resyncTotalBits: Int64
        /// Generation UUIDs.
        public var uuids: GenerationUUIDs
        /// Exported size in bytes.
        public var size: Int64
        /// Why the connection was last closed, if it was.
        public var lastCloseReason: String?
        /// Requests waiting for completion.
        public var pendingRequests: Int
        /// `lo`, `pe`, `ua`, `ap`, `ep` of /proc/drbd.
        public var local = 0, peer = 0, unacknowledged = 0, application = 0, epochs = 1
        /// The replication protocol letter.
        public var wireProtocol = "C"
        /// What the resync-rate controller of a SyncTarget wants, KiB/s (`want:` in /proc/drbd).
        public var resyncWantKiB: Int64 = 0
    }

    /// A runtime for an attached volume.
    public init(engine: VolumeEngine, disk: any BlockTarget, metadata: MetadataDevice, transport: any Transport,
                name: String, metadataFlushes: Bool = true, handlers: HandlerRunner = .none, logger: Logger? = nil) {
        self.engine = engine
        self.disk = disk
        self.metadata = metadata
        self.transport = transport
        self.metadataFlushes = metadataFlushes
        self.handlers = handlers
        engineQueue = DispatchQueue(label: "replica.engine.\(name)")
        ioQueue = DispatchQueue(label: "replica.io.\(name)")
        dataSendQueue = DispatchQueue(label: "replica.send.data.\(name)")
        metaSendQueue = DispatchQueue(label: "replica.send.meta.\(name)")
        published = Mutex(Snapshot(state: engine.state, counters: engine.counters, outOfSyncBits: engine.bitmap.setCount,
                                   resyncTotalBits: 0, uuids: engine.superblock.uuids, size: engine.size, lastCloseReason: nil, pendingRequests: 0))
        self.logger = logger ?? Logger(label: "replica.\(name)")
        AllocatorTuning.keepDataBuffersInHeap()
    }

    /// The latest published status.
    public var snapshot: Snapshot { published.withLock { $0 } }

    // MARK: - Commands

    /// Starts connecting to the peer (`connect`).
    public func connect(discardMyData: Bool = false) throws {
        let result: Result<Void, any Error> = engineQueue.sync {
            do {
                if engine.state.connection == .standAlone {
                    let effects = try engine.connect(discardMyData: discardMyData).get()
                    execute(effects)
                }
                if !transportRunning {
                    try transport.start(handler: self)
                    transportRunning = true
                }
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Disconnects and stays StandAlone (`disconnect`).
    public func disconnect() {
        engineQueue.sync {
            // The engine says goodbye to the peer (a disconnect frame, sent before the link
            // closes in order) and stops the transport through its effects.
            if let effects = try? engine.disconnect().get() { execute(effects) }
            if transportRunning {
                transport.stop()
                transportRunning = false
            }
            link = nil
        }
    }

    /// Runs an admin command of the engine on its queue.
    public func admin(_ command: @escaping @Sendable (inout VolumeEngine) -> Result<[EngineEffect], StateChangeError>) -> Result<Void, StateChangeError> {
        engineQueue.sync {
            switch command(&engine) {
            case .success(let effects):
                execute(effects)
                return .success(())
            case .failure(let error):
                return .failure(error)
            }
        }
    }

    /// Submits an application request; `completion` runs when the engine completes it.
    public func submit(_ request: ApplicationRequest, completion: @escaping @Sendable (Result<[UInt8], RequestError>) -> Void) {
        // Asynchronous: the caller (an NBD connection's reader) goes on reading requests
        // while the engine works; with many in flight that beats running the engine here.
        engineQueue.async { [self] in
            let id = nextRequestID
            nextRequestID += 1
            completions[id] = completion
            execute(engine.handle(.request(id, request)))
        }
    }

    /// `down`: demotes if Primary, disconnects gracefully, stops the transport, writes the
    /// bitmap and marks the meta-data clean (so the next attach needs no activity-log replay).
    public func shutdown() {
        engineQueue.sync {
            if let effects = try? engine.demote().get() { execute(effects) }
            if let effects = try? engine.disconnect().get() { execute(effects) }
        }
        transport.stop()
        // Let local I/O in flight finish before the meta-data is marked clean.
        _ = wait(timeout: 10) { $0.local == 0 && $0.pendingRequests == 0 }
        engineQueue.sync {
            transportRunning = false
            link = nil
            // A detached engine wrote its meta-data when it let the disk go; its in-memory
            // copy (Diskless flags) must not overwrite that.
            guard !engine.isDetached else { return }
            var superblock = engine.superblock
            superblock.magic = Superblock.magicV08
            superblock.flags.insert(.activityLogClean)
            do {
                try metadata.writeBitmap(engine.bitmap, superblock, flush: true)
                try metadata.writeSuperblock(superblock, flush: true)
            } catch {
                logger.error("down: \(error)")
            }
        }
    }

    /// Waits until `predicate` holds for the state (checked every `pollMicroseconds`, 20 ms
    /// unless given), or `timeout` seconds pass.
    public func wait(timeout: Double, pollMicroseconds: UInt32 = 20_000, until predicate: (Snapshot) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if predicate(snapshot) { return true }
            usleep(pollMicroseconds)
        }
        return predicate(snapshot)
    }

    // MARK: - PeerLinkHandler (called on transport threads)

    public func linkEstablished(_ link: any PeerLink) {
        engineQueue.async { [self] in
            self.link = link
            execute(engine.handle(.connectionEstablished(resolveConflicts: link.resolveConflicts)))
        }
    }

    public func received(_ frame: Frame, volume: UInt16, on link: any PeerLink) {
        engineQueue.async { [self] in
            guard let current = self.link, current === link else { return }
            execute(engine.handle(.frame(frame)))
        }
    }

    public func linkLost(_ link: any PeerLink, reason: String) {
        engineQueue.async { [self] in
            guard let current = self.link, current === link else { return }
            self.link = nil
            logger.info("connection lost: \(reason)")
            published.withLock { $0.lastCloseReason = reason }
            execute(engine.handle(.connectionLost))
        }
    }

    // MARK: - Effects (on engineQueue)

    /// Frames waiting on the meta send queue.
    private let queuedMetaSends = QueueDepth()

    /// Local I/O done inline whose completion the engine has not seen yet (see ``execute(_:)``).
    private var inlineCompletions: [(LocalIOID, LocalIOResult)] = []
    private var executing = false

    /// Small reads and writes run inline, on the engine queue: the engine only asks for I/O
    /// that may run alongside everything else in flight, and two thread hand-offs cost more
    /// than a small `pread`/`pwrite` into the page cache. Large transfers and flushes go to
    /// the I/O queue so that the engine keeps serving the network meanwhile.
    static func runsInline(_ io: LocalIO) -> Bool {
        switch io {
        case .read(_, let length): length <= 64 << 10
        case .write(_, let data): data.count <= 64 << 10
        case .flush, .discard: false
        }
    }

    private func execute(_ effects: [EngineEffect]) {
        let outermost = !executing
        executing = true
        defer {
            if outermost {
                // Completions of inline I/O, in order, after the effects that asked for them.
                while !inlineCompletions.isEmpty {
                    let (id, result) = inlineCompletions.removeFirst()
                    run(engine.handle(.localIOCompleted(id, result)))
                }
                executing = false
            }
        }
        run(effects)
    }

    private func run(_ effects: [EngineEffect]) {
        for effect in effects {
            switch effect {
            case .send(let frame):
                guard let link else { continue }
                let logger = self.logger
                if frame.type.channel == .meta, queuedMetaSends.isIdle {
                    // An ack or a ping, with nothing queued before it: sent from here, in order,
                    // without a thread hand-off. (Never data: a peer that stops reading fills
                    // that socket, and a send blocked here would stop the engine and the timers
                    // that declare the peer lost; the meta channel carries too little for that.)
                    do { try link.send(frame, volume: 0) } catch { logger.warning("send failed: \(error)") }
                    continue
                }
                let queued: QueueDepth? = frame.type.channel == .meta ? queuedMetaSends : nil
                queued?.enter()
                (frame.type.channel == .data ? dataSendQueue : metaSendQueue).async {
                    do {
                        try link.send(frame, volume: 0)
                    } catch {
                        logger.warning("send failed: \(error)")
                    }
                    queued?.leave()
                }
            case .localIO(let id, let io) where Self.runsInline(io):
                inlineCompletions.append((id, io.perform(on: disk)))
            case .localIO(let id, let io):
                let disk = self.disk
                ioQueue.async { [self] in
                    let result = io.perform(on: disk)
                    engineQueue.async { [self] in execute(engine.handle(.localIOCompleted(id, result))) }
                }
            case .complete(let id, let result):
                completions.removeValue(forKey: id)?(result)
            case .writeSuperblock(let superblock):
                do { try metadata.writeSuperblock(superblock, flush: metadataFlushes) } catch { logger.error("\(error)") }
            case .writeBitmap(let bitmap):
                do { try metadata.writeBitmap(bitmap, engine.superblock, flush: metadataFlushes) } catch { logger.error("\(error)") }
            case .writeActivityLog(let transaction):
                do { try metadata.writeActivityLogTransaction(transaction, engine.superblock, flush: metadataFlushes) } catch { logger.error("\(error)") }
            case .armTimer(let timer, let milliseconds):
                engineQueue.asyncAfter(deadline: .now() + .milliseconds(milliseconds)) { [self] in execute(engine.handle(.timer(timer))) }
            case .stateChanged(let state):
                logger.info("\(state)")
            case .closeConnection(let reason, let standAlone):
                published.withLock { $0.lastCloseReason = reason }
                let closing = link
                link = nil
                if let closing { closeAfterQueuedFrames(closing) }
                if standAlone {
                    // The link, if any, closes in order above; no new one is made.
                    if closing != nil { transport.stopConnecting() } else { transport.stop() }
                    transportRunning = false
                } else if closing != nil {
                    execute(engine.handle(.connectionLost))
                }
            case .log(let line):
                logger.info("\(line)")
            case .callHandler(let name):
                handlers.call(name, logger: logger)
            case .detachDisk(let reason):
                // The engine asks for no disk work from here on; I/O already queued on the
                // serial I/O queue still completes. The device is closed with the runtime.
                logger.warning("detached from the backing device: \(reason)")
            }
        }
        publish()
    }

    /// Closes `link` once the frames already queued for it are sent, in order (the peer then
    /// sees why: after a refused handshake it gets our UUIDs and reaches the same verdict), or
    /// after a second if a send is stuck behind a peer that does not read (closing unblocks it).
    private func closeAfterQueuedFrames(_ link: any PeerLink) {
        let drained = DispatchGroup()
        dataSendQueue.async(group: drained) {}
        metaSendQueue.async(group: drained) {}
        DispatchQueue.global().async {
            guard drained.wait(timeout: .now() + 1) == .success else { return link.close() }
            link.closeGracefully(timeout: 1)
        }
    }

    private func publish() {
        var snapshot = Snapshot(state: engine.state, counters: engine.counters, outOfSyncBits: engine.bitmap.setCount,
                                resyncTotalBits: engine.resync.total, uuids: engine.superblock.uuids, size: engine.size,
                                lastCloseReason: published.withLock { $0.lastCloseReason }, pendingRequests: completions.count)
        let inFlight = engine.inFlight
        snapshot.local = inFlight.local
        snapshot.peer = inFlight.peer
        snapshot.unacknowledged = inFlight.unacknowledged
        snapshot.application = inFlight.application
        snapshot.epochs = inFlight.epochs
        snapshot.wireProtocol = engine.configuration.wireProtocol
        snapshot.resyncWantKiB = engine.resync.controller.wantKiBPerSecond
        published.withLock { $0 = snapshot }
    }
}

/// How many jobs wait on a serial queue (so that a caller may do a job inline, in order, when
/// none does).
final class QueueDepth: Sendable {
    private let count = Atomic<Int>(0)

    /// No job is queued or running.
    var isIdle: Bool { count.load(ordering: .acquiring) == 0 }
    /// A job was queued.
    func enter() { count.add(1, ordering: .acquiringAndReleasing) }
    /// A job finished.
    func leave() { count.subtract(1, ordering: .acquiringAndReleasing) }
}
