import Foundation
import Logging
import Synchronization

/// Runs a resource — the ``VolumeEngine`` of each of its volumes — with real parts: one link to
/// the peer through a ``Transport`` (frames carry their volume), each volume's disk and
/// meta-data, timers, application requests. Every volume's engine is driven by an
/// ``EngineDriver``, the interpreter the in-memory cluster and the simulator run too.
///
/// Engine events run one step at a time, serialized by one queue: events that arrive together
/// (the requests an NBD reader read with one `recv`, the frames a receive thread read with
/// one) form one step, run on the thread that brought them, without a hand-off; timers and
/// large I/O completions run on the queue's own thread. Small reads and writes run inline in
/// the step, large ones and flushes on the volume's I/O queue. A step never waits for the
/// network: frames go to the link, which sends them at once or queues them. The queue is
/// bounded (``LinkLimits``): while it is full, or while `max-io-depth` requests are in the
/// engine, new application requests wait — held, never dropped — and `status` says
/// `congested`. Nothing blocks Swift's cooperative thread pool (``submit(_:volume:notice:completion:)``
/// never waits).
public final class ReplicationRuntime: PeerLinkHandler, @unchecked Sendable {
    // All mutable state below is confined to `engineQueue`, except what the locks guard.
    let volumes: [VolumeRuntime]
    private let volumeIndex: [UInt16: Int]
    /// The transport that makes links to the peer.
    public let transport: any Transport
    let engineQueue: DispatchQueue
    var link: (any PeerLink)?
    var transportRunning = false
    /// The bounds of back-pressure.
    public let limits: LinkLimits
    let logger: Logger
    /// The resource's name.
    public let name: String

    // Steps.
    private var executing = false
    /// Frames the current step sends, in order; handed to the link when the step ends.
    private var pendingSends: [OutgoingFrame] = []
    /// Their data bytes (admission counts them with the link's queue).
    private(set) var pendingSendBytes = 0
    /// Work to do once the current engine call has returned (another volume's events).
    private var deferred: [() -> Void] = []
    /// Whose completions the current step delivered.
    private var deliveredNotices: [DeliveryNotice] = []

    // Admission (back-pressure).
    var heldRequests: [HeldRequest] = []
    var applicationInFlight = 0
    var nextRequestID: RequestID = 1
    /// Requests held back (read without the engine queue by the link's sender threads).
    let heldCount = Atomic<Int>(0)

    // Status.
    let published: Mutex<ResourceSnapshot>
    /// The last failed connection attempt's reason that was logged (each new reason is
    /// logged once, not at every attempt); cleared when a link is made.
    private let loggedAttemptFailure = Mutex<String?>(nil)
    let publishedChanged = NSCondition()
    /// Threads in ``waitForResource(timeout:until:)``: a step wakes them only when there are any.
    let publishWaiters = Atomic<Int>(0)
    /// Told of every change of a volume's role, connection or disk state (events streams).
    public let stateChanges: StateChangeSignal

    /// A runtime for a resource's volumes (one at least; each with its own number) over
    /// `transport`. `name`: for logs and thread names.
    public init(volumes setups: [VolumeSetup], transport: any Transport, limits: LinkLimits = LinkLimits(),
                name: String, logger: Logger? = nil, stateChanges: StateChangeSignal = StateChangeSignal()) {
        self.stateChanges = stateChanges
        precondition(!setups.isEmpty, "a resource has at least one volume")
        let logger = logger ?? Logger(label: "replica.\(name)")
        self.logger = logger
        self.name = name
        self.transport = transport
        self.limits = limits
        engineQueue = DispatchQueue(label: "replica.engine.\(name)")
        let sorted = setups.sorted { $0.number < $1.number }
        volumes = sorted.map { VolumeRuntime(setup: $0, name: name, logger: logger) }
        volumeIndex = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1.number, $0) })
        var snapshot = ResourceSnapshot(volumes: sorted.map { VolumeSnapshot(number: $0.number, engine: $0.engine) }, transport: transport.kind)
        snapshot.tls = transport.isEncrypted
        published = Mutex(snapshot)
        for (volume, setup) in zip(volumes, sorted) {
            volume.resource = self
            volume.install(EngineDriver(engine: setup.engine, metadata: setup.metadata, metadataFlushes: setup.metadataFlushes, host: volume))
        }
        AllocatorTuning.keepDataBuffersInHeap()
    }

    /// A runtime for one volume (number 0).
    public convenience init(volume setup: VolumeSetup, transport: any Transport, limits: LinkLimits = LinkLimits(), name: String, logger: Logger? = nil) {
        self.init(volumes: [setup], transport: transport, limits: limits, name: name, logger: logger)
    }

    /// The volume numbers, ascending.
    public var volumeNumbers: [UInt16] { volumes.map(\.number) }

    /// The index of volume `number`.
    func volume(_ number: UInt16) -> VolumeRuntime? { volumeIndex[number].map { volumes[$0] } }

    // MARK: - Steps

    /// Runs `body` as (or inside) one engine step and then the delivery notices.
    func step(_ body: () -> Void) {
        for notice in stepKeepingNotices(body) { notice.notify() }
    }

    /// One engine step: `body` handles events; then the deferred work runs, the frames said so
    /// far leave (together), the inline I/O is done in order with each completion handed to
    /// the engine at once, held requests are admitted where the bounds allow — until nothing
    /// is left — and the status is published. Nested calls join the step that is running.
    /// Returns the delivery notices, for the caller to run once it has left the engine queue
    /// (the replies they send then do not hold up the next step).
    func stepKeepingNotices(_ body: () -> Void) -> [DeliveryNotice] {
        guard !executing else {
            body()
            return []
        }
        executing = true
        body()
        while true {
            if !deferred.isEmpty {
                let work = deferred
                deferred.removeAll()
                for item in work { item() }
                continue
            }
            if volumes.contains(where: { !$0.inlineIO.isEmpty }) {
                // The frames first (the peer writes while this node does), then the I/O.
                flushSends()
                for volume in volumes where !volume.inlineIO.isEmpty { volume.performInlineIO() }
                continue
            }
            if admitHeldRequests() { continue }
            break
        }
        flushSends()
        publish()
        executing = false
        guard !deliveredNotices.isEmpty else { return [] }
        defer { deliveredNotices.removeAll() }
        return deliveredNotices
    }

    /// Runs `body` in a step on the engine queue, later (after a disk I/O on another thread).
    func afterIO(_ body: @escaping @Sendable () -> Void) {
        engineQueue.async { [self] in step(body) }
    }

    /// Runs `body` in a step on the engine queue after `milliseconds`, if the runtime still
    /// exists then (a pending timer does not keep a runtime that was let go alive).
    func afterDelay(milliseconds: Int, _ body: @escaping @Sendable () -> Void) {
        engineQueue.asyncAfter(deadline: .now() + .milliseconds(milliseconds)) { [weak self] in self?.step(body) }
    }

    /// Runs `body` once the current engine call has returned, in the same step.
    func later(_ body: @escaping () -> Void) { deferred.append(body) }

    /// A frame an engine sends (dropped without a link).
    func queueFrame(_ frame: OutgoingFrame) {
        guard link != nil else { return }
        pendingSends.append(frame)
        pendingSendBytes += frame.held?.count ?? FrameCodec.dataBytes(frame.frame).count
    }

    /// True while a link is up.
    var hasLink: Bool { link != nil }

    /// Hands the frames of this step to the link: it sends them at once where its channels
    /// take them, else queues them (a step never waits for the peer: a peer that stops reading
    /// must not stop the engine and the timers that declare it lost, and the link's receive
    /// threads, which run steps, must never wait for each other).
    private func flushSends() {
        guard !pendingSends.isEmpty else { return }
        defer {
            pendingSends.removeAll(keepingCapacity: true)
            pendingSendBytes = 0
        }
        link?.send(pendingSends)
    }

    /// A request's completion ran: its notice, if any, runs after the step.
    func noteDelivered(_ notice: DeliveryNotice?) {
        if let notice, !deliveredNotices.contains(where: { $0 === notice }) { deliveredNotices.append(notice) }
    }

    // MARK: - PeerLinkHandler (called on the link's threads)

    public func linkEstablished(_ link: any PeerLink) {
        engineQueue.async { [self] in
            guard transportRunning else {
                // Made while the resource was being disconnected: not wanted.
                return link.close(reason: "disconnected")
            }
            step {
                self.link = link
                published.withLock { $0.endpoints = link.endpoints }
                loggedAttemptFailure.withLock { $0 = nil }
                for volume in volumes { volume.driver.handle(.connectionEstablished(resolveConflicts: link.resolveConflicts)) }
            }
        }
    }

    /// Runs the step on the link's receive thread (no thread hand-off): a step never waits for
    /// the network, so receive threads cannot wait on each other through their engines.
    public func received(_ frames: [ReceivedFrame], on link: any PeerLink) {
        let notices = engineQueue.sync { [self] in
            stepKeepingNotices {
                // A frame may end the link (a protocol violation); the rest then belong to no one.
                for received in frames {
                    guard let current = self.link, current === link else { return }
                    guard let volume = volume(received.volume) else {
                        _ = closeConnection(reason: "protocol error: \(received.frame.type) frame for volume \(received.volume), which resource \(name) does not have here (volumes \(volumeNumbers.map(String.init).joined(separator: ", ")))")
                        return
                    }
                    volume.driver.received(received.frame, held: received.held)
                }
            }
        }
        // The replies these frames completed (acks of protocol C writes) leave after the step,
        // so that the next step need not wait for them.
        for notice in notices { notice.notify() }
    }

    public func linkDrained(_ link: any PeerLink) {
        guard heldCount.load(ordering: .relaxed) > 0 else { return }
        engineQueue.async { [self] in step {} }
    }

    public func linkLost(_ link: any PeerLink, reason: String) {
        engineQueue.async { [self] in
            guard let current = self.link, current === link else { return }
            step {
                self.link = nil
                logger.info("connection lost: \(reason)")
                published.withLock { $0.lastCloseReason = reason }
                for volume in volumes { volume.driver.handle(.connectionLost) }
            }
        }
    }

    public func connectionAttemptFailed(reason: String) {
        let isNew = loggedAttemptFailure.withLock { last -> Bool in
            defer { last = reason }
            return last != reason
        }
        if isNew { logger.warning("connection attempt failed: \(reason)") }
    }

    public func connectionRefused(reason: String) {
        engineQueue.async { [self] in
            guard transportRunning else { return }
            step {
                logger.error("\(reason)")
                // No link was made: what a StandAlone close does without one.
                _ = closeConnection(reason: reason, standAlone: true)
            }
        }
    }

    // MARK: - Closing the connection

    /// A volume's engine closes the connection: what this step said before leaves first, on
    /// the closing link, which then closes in order; the other volumes see the loss too. With
    /// `standAlone` the resource stays StandAlone (no new link): every volume is disconnected,
    /// as DRBD's connection is the resource's. Returns true when there was a link.
    func closeConnection(from closer: VolumeRuntime? = nil, reason: String, standAlone: Bool = false) -> Bool {
        flushSends()
        // The other volumes' disconnects that follow a StandAlone close find neither a link
        // nor a running transport: they keep its reason.
        if link != nil || transportRunning { published.withLock { $0.lastCloseReason = reason } }
        let closing = link
        link = nil
        if let closing { closeAfterQueuedFrames(closing) }
        if standAlone {
            // The link, if any, closes in order above; no new one is made.
            // (Never waiting here, in a step: the threads end on their own; shutdown or the
            // next connect joins them.)
            transport.stopConnecting()
            transportRunning = false
            for volume in volumes where volume !== closer {
                later { volume.driver.command { engine in engine.state.connection == .standAlone ? .success([]) : engine.disconnect() } }
            }
        } else if closing != nil {
            for volume in volumes where volume !== closer {
                later { volume.driver.handle(.connectionLost) }
            }
        }
        return closing != nil
    }

    /// Closes `link` in order once what was queued for it went out (the peer then sees why:
    /// after a refused handshake it gets our UUIDs and reaches the same verdict), within a
    /// second; a link stuck behind a peer that does not read is closed then. The closing
    /// thread is kept, so that ``shutdown(timeout:)`` waits for it.
    private func closeAfterQueuedFrames(_ link: any PeerLink) {
        let thread = JoinableThread.start(name: "replica-close") {
            link.closeGracefully(timeout: 1)
            link.join()
        }
        guard let thread else {
            link.close(reason: "closed")
            return
        }
        // Closes that ended are joined now, so the list stays as short as the closes running.
        let ended = closingLinks.withLock { threads -> [JoinableThread] in
            let done = threads.filter(\.hasEnded)
            threads.removeAll { $0.hasEnded }
            threads.append(thread)
            return done
        }
        for done in ended { done.join() }
    }

    /// Threads closing links in order (joined by ``shutdown(timeout:)``).
    let closingLinks = Mutex<[JoinableThread]>([])
}

/// An application request held back by the bounds (``LinkLimits``) until they allow it.
struct HeldRequest {
    var volume: VolumeRuntime
    var request: ApplicationRequest
    var completion: ReplicationRuntime.Completion
    var notice: DeliveryNotice?
    var batch: AdmissionBatch?
}
