import Foundation
import Logging
import Synchronization

/// Executes a ``VolumeEngine``'s effects with real parts: the disk through a ``BlockTarget``
/// on an I/O queue, meta-data writes in order, frames through a ``Transport``'s link, timers.
///
/// Engine events run one step at a time, serialized by one queue: events that arrive together
/// (the requests an NBD reader read with one `recv`, the frames a receive thread read with
/// one) form one step, run on the thread that brought them, without a hand-off; timers and
/// large I/O completions run on the queue's own thread. Small reads and writes run inline in
/// the step, large ones and flushes on an I/O queue. A step never waits for the network:
/// frames leave without waiting, or through a send queue per channel. Nothing blocks Swift's
/// cooperative thread pool (``submit(_:notice:completion:)`` never waits).
public final class ReplicationRuntime: PeerLinkHandler, @unchecked Sendable {
    // All mutable state below is confined to `engineQueue`, except what the Mutexes guard.
    private var engine: VolumeEngine
    /// The backing disk and its meta-data; nil for a volume configured without a disk
    /// (`disk none`), whose engine asks for neither. Replaced by an attach in place.
    private var disk: (any BlockTarget)?
    private var metadata: MetadataDevice?
    private let transport: any Transport
    private let engineQueue: DispatchQueue
    private let ioQueue: DispatchQueue
    /// One sender queue per channel: frames keep their order within a channel, and the
    /// engine never blocks in `sendmsg` while the peer drains its socket.
    private let dataSendQueue: DispatchQueue
    private let metaSendQueue: DispatchQueue
    private var link: (any PeerLink)?
    private var completions: [RequestID: PendingRequest] = [:]
    private var nextRequestID: RequestID = 1
    private var transportRunning = false
    private let published: Mutex<Snapshot>
    private let logger: Logger
    /// `md-flushes`: flush after meta-data writes.
    public let metadataFlushes: Bool
    /// The resource's `handlers { }`.
    public let handlers: HandlerRunner

    /// A runtime for an attached volume, or (`disk` and `metadata` nil) for a volume without a
    /// disk, whose engine is ``VolumeEngine/withoutDisk(configuration:entropySeed:)``.
    public init(engine: VolumeEngine, disk: (any BlockTarget)?, metadata: MetadataDevice?, transport: any Transport,
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

    /// `attach` of a Diskless Primary on its live connection
    /// (``VolumeEngine/attachInPlace(_:)``): the attachment's disk and meta-data take the
    /// detached ones' place, and the peer resyncs the disk while this node goes on serving.
    public func attachInPlace(_ attachment: VolumeAttachment) -> Result<Void, VolumeEngine.AttachRefusal> {
        engineQueue.sync {
            switch engine.attachInPlace(attachment.engine) {
            case .success(let effects):
                disk = attachment.disk
                metadata = attachment.metadata
                execute(effects)
                return .success(())
            case .failure(let refusal):
                return .failure(refusal)
            }
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

    /// What runs when the engine completes an application request: the data read (empty for
    /// other requests) or why it failed.
    public typealias Completion = @Sendable (Result<[UInt8], RequestError>) -> Void

    /// Submits an application request; `completion` runs when the engine completes it. Never
    /// waits: callable from anywhere, Swift's cooperative pool included.
    /// `notice`, if given, runs after the engine step that completed it (see
    /// ``submitWaitingForStep(_:notice:)``).
    public func submit(_ request: ApplicationRequest, notice: DeliveryNotice? = nil, completion: @escaping Completion) {
        engineQueue.async { [self] in
            step { start(request, completion, notice: notice) }
        }
    }

    /// Submits requests that arrived together in one engine step, run on the caller's thread
    /// (no thread hand-off; the caller waits while the step runs — small reads and writes done
    /// inline, the rest started — so call it from a dedicated thread such as an NBD
    /// connection's reader, never from Swift's cooperative pool). Each completion runs when the
    /// engine completes its request; `notice`, if given, runs once after each engine step in
    /// which any of them completed, so that the caller can answer everything that completed
    /// together at once (one `sendmsg` for many replies).
    public func submitWaitingForStep(_ requests: [(ApplicationRequest, Completion)], notice: DeliveryNotice?) {
        let notices = engineQueue.sync { [self] in
            stepKeepingNotices {
                for (request, completion) in requests { start(request, completion, notice: notice) }
            }
        }
        for notice in notices { notice.notify() }
    }

    /// Hands one application request to the engine (on the engine queue, inside a step).
    private func start(_ request: ApplicationRequest, _ completion: @escaping Completion, notice: DeliveryNotice?) {
        let id = nextRequestID
        nextRequestID += 1
        completions[id] = PendingRequest(completion: completion, notice: notice)
        run(engine.handle(.request(id, request)))
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
            guard !engine.isDetached, let metadata else { return }
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

    // MARK: - PeerLinkHandler (called on transport threads)

    public func linkEstablished(_ link: any PeerLink) {
        engineQueue.async { [self] in
            self.link = link
            execute(engine.handle(.connectionEstablished(resolveConflicts: link.resolveConflicts)))
        }
    }

    public func received(_ frame: Frame, volume: UInt16, on link: any PeerLink) {
        received([ReceivedFrame(frame)], on: link)
    }

    /// Runs the step on the transport's receive thread (no thread hand-off): a step never
    /// waits for the network (see ``flushSends()``), so receive threads cannot wait on each
    /// other through their engines.
    public func received(_ frames: [ReceivedFrame], on link: any PeerLink) {
        let notices = engineQueue.sync { [self] in
            stepKeepingNotices {
                // A frame may end the link (a protocol violation); the rest then belong to no one.
                for received in frames {
                    guard let current = self.link, current === link else { return }
                    if let held = received.held {
                        run(engine.handle(.heldFrame(received.frame, held)))
                    } else {
                        run(engine.handle(.frame(received.frame)))
                    }
                }
            }
        }
        // The replies these frames completed (acks of protocol C writes) leave after the step,
        // so that the next step need not wait for them.
        for notice in notices { notice.notify() }
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

    /// Sends waiting on each channel's send queue.
    private let queuedMetaSends = QueueDepth()
    private let queuedDataSends = QueueDepth()

    /// Local I/O this step does itself, after the frames said before it (see ``step(_:)``).
    private var inlineIO: [(LocalIOID, LocalIO)] = []
    /// Frames the current step sends, in order (with their held data, if any); handed to the
    /// link when the step ends.
    private var pendingSends: [(frame: Frame, held: HeldData?)] = []
    /// Whose completions the current step delivered.
    private var deliveredNotices: [DeliveryNotice] = []
    private var executing = false

    /// How long the last flush of the disk took, in nanoseconds (nil before the first).
    private var lastFlushNanoseconds: UInt64?
    /// Bitmap pages of a save that failed, written again with the next save.
    private var unwrittenBitmapPages = UnwrittenBitmapPages()
    /// A flush runs inline while the last one took at most this long (a disk whose flushes
    /// are cheap: a write cache with power-loss protection, tmpfs); a slower one sends the
    /// next to the I/O queue, so a step waits for at most one slow flush.
    static let inlineFlushLimitNanoseconds: UInt64 = 200_000

    /// Small reads and writes run inline, in the step: the engine only asks for I/O that may
    /// run alongside everything else in flight, and two thread hand-offs cost more than a
    /// small `pread`/`pwrite` into the page cache. While connected, writes up to 1 MiB run
    /// inline too: the step has sent the frame first, so the local write overlaps the peer's
    /// (StandAlone, the I/O queue lets the reader take the next request meanwhile: faster
    /// alone, slower when connected, measured with fio at 1 MiB QD 8). Flushes run inline
    /// while they are fast (a peer flushes at every barrier, and the writes after the barrier
    /// wait for it). Large transfers, slow flushes and discards go to the I/O queue so that
    /// the engine keeps serving the network meanwhile. So do blocks received held
    /// (``SplicedReceive``: large resync blocks and replicated writes): the receive thread
    /// then only splices them into pipes, without a copy, and takes the next while the I/O
    /// thread copies this one into the disk — the two halves of a receiver's work on two
    /// cores (docs/PERFORMANCE.md: a full sync +15–25 % against writing them inline).
    private func runsInline(_ io: LocalIO) -> Bool {
        switch io {
        case .read(_, let length), .readForPeer(_, let length): length <= 64 << 10
        case .write: io.range.count <= 64 << 10 || (link != nil && io.range.count <= 1 << 20)
        case .writeHeld: false
        case .flush: lastFlushNanoseconds.map { $0 <= Self.inlineFlushLimitNanoseconds } ?? false
        case .discard: false
        }
    }

    /// Performs `io` on `disk` and returns the engine's event for it; a flush's duration is measured.
    private static func perform(_ id: LocalIOID, _ io: LocalIO, on disk: (any BlockTarget)?) -> (EngineEvent, flushNanoseconds: UInt64?) {
        guard let disk else {
            // (An engine without a disk asks for no disk work; were it to, it fails.)
            return (.localIOCompleted(id, .failure(BlockIOError(operation: io.operation, offset: io.range.lowerBound, length: Int64(io.range.count),
                                                                errno: 19, detail: "the volume has no disk (disk none)"))), nil)
        }
        guard case .flush = io else { return (io.completion(id, on: disk), nil) }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = io.perform(on: disk)
        return (.localIOCompleted(id, result), DispatchTime.now().uptimeNanoseconds - start)
    }

    private func execute(_ effects: [EngineEffect]) {
        step { run(effects) }
    }

    /// One engine step: `body` handles events; then the frames said so far leave (together),
    /// the inline I/O is done in order with each completion handled at once (until none is
    /// left), the rest of the frames leave, the status is published and the delivery notices
    /// run. Nested calls join the step that is running.
    private func step(_ body: () -> Void) {
        for notice in stepKeepingNotices(body) { notice.notify() }
    }

    /// ``step(_:)`` without running the delivery notices: returned, for the caller to run once
    /// it has left the engine queue (the replies they send then do not hold up the next step).
    private func stepKeepingNotices(_ body: () -> Void) -> [DeliveryNotice] {
        guard !executing else {
            body()
            return []
        }
        executing = true
        body()
        while !inlineIO.isEmpty {
            // The frames first (the peer writes while this node does), then the I/O in order,
            // each completion handled as it is done (it may ask for more).
            flushSends()
            let batch = inlineIO
            inlineIO.removeAll(keepingCapacity: true)
            for (id, io) in batch {
                let (completion, flushTime) = Self.perform(id, io, on: disk)
                if let flushTime { lastFlushNanoseconds = flushTime }
                run(engine.handle(completion))
            }
        }
        flushSends()
        publish()
        executing = false
        guard !deliveredNotices.isEmpty else { return [] }
        defer { deliveredNotices.removeAll() }
        return deliveredNotices
    }

    /// Hands the frames of this step to the link, each channel's in one write where the
    /// transport can: sent from here when nothing waits on that channel's send queue and the
    /// socket takes them at once; otherwise (or the part the socket did not take) through the
    /// channel's send queue, in order. A step never waits for the peer: a peer that stops
    /// reading must not stop the engine and the timers that declare it lost, and the
    /// transport's receive threads, which run steps, must never wait for each other.
    /// A frame with held data (a spliced resync block) always goes through the send queue,
    /// in its place among the others.
    private func flushSends() {
        guard !pendingSends.isEmpty else { return }
        let outgoing = pendingSends
        pendingSends.removeAll(keepingCapacity: true)
        guard let link else { return }
        let meta = outgoing.filter { $0.frame.type.channel == .meta }.map(\.frame)
        if !meta.isEmpty { send(meta, on: link, through: metaSendQueue, queued: queuedMetaSends) }
        var data: [Frame] = []
        for (frame, held) in outgoing where frame.type.channel == .data {
            guard let held else {
                data.append(frame)
                continue
            }
            if !data.isEmpty { send(data, on: link, through: dataSendQueue, queued: queuedDataSends) }
            data.removeAll()
            enqueue({ () throws(TransportError) in try link.send(frame, appending: held, volume: 0) }, on: dataSendQueue, queued: queuedDataSends)
        }
        if !data.isEmpty { send(data, on: link, through: dataSendQueue, queued: queuedDataSends) }
    }

    private func send(_ frames: [Frame], on link: any PeerLink, through queue: DispatchQueue, queued: QueueDepth) {
        var work: PendingSend = { () throws(TransportError) in try link.send(frames, volume: 0) }
        if queued.isIdle {
            do {
                guard let rest = try link.sendWithoutWaiting(frames, volume: 0) else { return }
                work = rest
            } catch {
                return logger.warning("send failed: \(error)")
            }
        }
        enqueue(work, on: queue, queued: queued)
    }

    /// Runs `work` on a channel's send queue, after what is queued there.
    private func enqueue(_ work: @escaping PendingSend, on queue: DispatchQueue, queued: QueueDepth) {
        let logger = self.logger
        queued.enter()
        queue.async {
            do { try work() } catch { logger.warning("send failed: \(error)") }
            queued.leave()
        }
    }

    private func run(_ effects: [EngineEffect]) {
        for effect in effects {
            switch effect {
            case .send(let frame):
                if link != nil { pendingSends.append((frame, nil)) }
            case .sendHeld(let frame, let held):
                if link != nil { pendingSends.append((frame, held)) }
            case .localIO(let id, let io) where runsInline(io):
                inlineIO.append((id, io))
            case .localIO(let id, let io):
                let disk = self.disk
                ioQueue.async { [self] in
                    let (completion, flushTime) = Self.perform(id, io, on: disk)
                    engineQueue.async { [self] in
                        if let flushTime { lastFlushNanoseconds = flushTime }
                        execute(engine.handle(completion))
                    }
                }
            case .complete(let id, let result):
                guard let pending = completions.removeValue(forKey: id) else { continue }
                pending.completion(result)
                if let notice = pending.notice, !deliveredNotices.contains(where: { $0 === notice }) {
                    deliveredNotices.append(notice)
                }
            case .writeSuperblock(let superblock):
                do { try metadata?.writeSuperblock(superblock, flush: metadataFlushes) } catch { logger.error("\(error)") }
            case .writeBitmap(let pages):
                let runs = unwrittenBitmapPages.runs(for: pages)
                do {
                    try metadata?.writeBitmapPages(runs, engine.superblock, flush: metadataFlushes)
                    unwrittenBitmapPages.clear()
                } catch {
                    unwrittenBitmapPages.keep(runs)
                    logger.error("\(error)")
                }
            case .writeActivityLog(let transaction):
                do { try metadata?.writeActivityLogTransaction(transaction, engine.superblock, flush: metadataFlushes) } catch { logger.error("\(error)") }
            case .armTimer(let timer, let milliseconds):
                engineQueue.asyncAfter(deadline: .now() + .milliseconds(milliseconds)) { [self] in execute(engine.handle(.timer(timer))) }
            case .stateChanged(let state):
                logger.info("\(state)")
            case .closeConnection(let reason, let standAlone):
                // What this step said before closing leaves first, on the closing link.
                flushSends()
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

/// An application request the engine has not completed yet.
private struct PendingRequest {
    var completion: ReplicationRuntime.Completion
    var notice: DeliveryNotice?
}
