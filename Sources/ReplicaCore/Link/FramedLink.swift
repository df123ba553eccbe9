import Foundation
import Synchronization

/// A frame as one channel's wire delivered it: its header (checked for its bounds), fixed
/// part and data, or its data kept out of memory.
struct WireFrame {
    var header: FrameHeader
    var fixed: [UInt8]
    var data: [UInt8]
    var held: (any HeldDataStorage)?
}

/// One channel of a link as its shape carries frames: a byte stream (``StreamWire``) or a
/// message channel with credits (``MessageWire``). The wire moves frames; ``FramedLink`` does
/// everything else once for both shapes.
protocol FrameWire: AnyObject, Sendable {
    /// What the channel's outbox queues.
    associatedtype Item: OutboxItem
    /// The frames of one send, encoded for this wire (all of this wire's channel).
    func pack(_ frames: [OutgoingFrame]) -> Item
    /// True when `item` may be tried without waiting from the sending thread (small, in memory).
    func triesAtOnce(_ item: Item) -> Bool
    /// Puts what the channel takes now of `item` on it: nil when all went, else the rest.
    func tryWrite(_ item: Item) throws(TransportError) -> Item?
    /// Puts `items` on the channel in order, waiting as long as the peer makes it.
    func write(_ items: [Item]) throws(TransportError)
    /// The next frame from the peer, waiting for it.
    func nextFrame() throws(TransportError) -> WireFrame
    /// True when ``nextFrame()`` would not wait.
    var nextFrameIsReady: Bool { get }
    /// Ends the sending direction after what was sent.
    func shutdownSending()
    /// Closes the channel now (blocked calls return). Idempotent.
    func close()
}

/// A link made of two wires, data and meta: what every link shape shares — frames checked as
/// they arrive (decoded by ``FrameCodec``, on the channel their type belongs to, for a volume),
/// handed to the handler in batches of those that arrived together, sends queued per channel
/// (``ChannelOutbox``), an orderly or immediate close, and threads that end with the link.
final class FramedLink<Wire: FrameWire>: PeerLink, @unchecked Sendable {
    // One wire and one outbox per channel, as stored properties: a send looks up nothing
    // (dictionaries here cost generic lookups on every frame).
    private let dataWire: Wire
    private let metaWire: Wire
    private var dataOutbox: ChannelOutbox<Wire.Item>?
    private var metaOutbox: ChannelOutbox<Wire.Item>?
    private var receivers: [JoinableThread] = []
    private let handler: any PeerLinkHandler
    private let closed = Mutex(false)
    /// Channels whose stream the peer ended cleanly, and the orderly close's wait.
    private let ended = NSCondition()
    private var endedChannels = 0
    private var finishedChannels = 0
    /// At most this many received frames go to the handler at once.
    static var largestBatch: Int { 64 }
    let resolveConflicts: Bool
    let endpoints: String

    /// A link over `data` and `meta`; ``start(lowMark:)`` starts its threads.
    init(data: Wire, meta: Wire, resolveConflicts: Bool, endpoints: String, handler: any PeerLinkHandler) {
        dataWire = data
        metaWire = meta
        self.resolveConflicts = resolveConflicts
        self.endpoints = endpoints
        self.handler = handler
    }

    /// Starts the senders; `lowMark`: the queue size below which the handler hears
    /// ``PeerLinkHandler/linkDrained(_:)``. Call it before the handler learns of the link (it
    /// may send at once), and ``startReceiving()`` after. False (the link closed) when the
    /// system refuses a thread.
    func startSending(lowMark: Int) -> Bool {
        for channel in [Channel.data, .meta] {
            let wire = wire(channel)
            let outbox = ChannelOutbox<Wire.Item>(
                name: "replica-tx-\(channel)", lowMark: lowMark,
                tryWrite: { item throws(TransportError) in try wire.tryWrite(item) },
                write: { items throws(TransportError) in try wire.write(items) },
                // Strong: the outbox drops these when its thread ends (after a close, a
                // failure or the end of a graceful close), which breaks the cycle.
                events: .init(drained: { [self] in handler.linkDrained(self) },
                              failed: { [self] error in close(reason: error.description) },
                              finished: { [self] in channelFinished(channel) }))
            switch channel {
            case .data: dataOutbox = outbox
            case .meta: metaOutbox = outbox
            }
        }
        guard outboxes.allSatisfy(\.isRunning) else {
            close(reason: "the system refused a thread for the link")
            return false
        }
        return true
    }

    /// Starts the receive threads (after the handler learned of the link: what they receive
    /// goes to it). False (the link closed) when the system refuses a thread.
    func startReceiving() -> Bool {
        for channel in [Channel.data, .meta] {
            guard let thread = JoinableThread.start(name: "replica-rx-\(channel)", { [self] in receiveLoop(channel) }) else {
                close(reason: "the system refused a thread for the link")
                return false
            }
            receivers.append(thread)
        }
        return true
    }

    /// True once the link was closed.
    var isClosed: Bool { closed.withLock { $0 } }

    private func wire(_ channel: Channel) -> Wire {
        switch channel {
        case .data: dataWire
        case .meta: metaWire
        }
    }

    private func outbox(_ channel: Channel) -> ChannelOutbox<Wire.Item>? {
        switch channel {
        case .data: dataOutbox
        case .meta: metaOutbox
        }
    }

    private var outboxes: [ChannelOutbox<Wire.Item>] { [dataOutbox, metaOutbox].compactMap { $0 } }

    @_specialize(exported: false, where Wire == StreamWire)
    @_specialize(exported: false, where Wire == MessageWire)
    func send(_ frames: [OutgoingFrame]) {
        guard !frames.isEmpty else { return }
        // Almost always all of one channel: no regrouping then.
        let first = frames[0].frame.type.channel
        if frames.allSatisfy({ $0.frame.type.channel == first }) { return submit(frames, on: first) }
        for channel in [Channel.data, .meta] {
            let group = frames.filter { $0.frame.type.channel == channel }
            if !group.isEmpty { submit(group, on: channel) }
        }
    }

    private func submit(_ frames: [OutgoingFrame], on channel: Channel) {
        guard let outbox = outbox(channel) else { return }
        let wire = wire(channel)
        let item = wire.pack(frames)
        outbox.submit(item, tryNow: wire.triesAtOnce(item))
    }

    var queuedBytes: Int {
        @_specialize(exported: false, where Wire == StreamWire)
        @_specialize(exported: false, where Wire == MessageWire)
        get { (dataOutbox?.queuedBytes ?? 0) + (metaOutbox?.queuedBytes ?? 0) }
    }

    // MARK: - Receiving

    private func receiveLoop(_ channel: Channel) {
        let wire = wire(channel)
        var batch: [ReceivedFrame] = []
        while !isClosed {
            do throws(TransportError) {
                // Frames that arrived together go to the handler together, before this thread
                // waits for more.
                if !wire.nextFrameIsReady { deliver(&batch) }
                let raw = try wire.nextFrame()
                let frame: Frame
                do {
                    if let held = raw.held {
                        frame = try FrameCodec.decode(raw.header, fixed: raw.fixed, heldCount: held.count)
                    } else {
                        frame = try FrameCodec.decode(raw.header, fixed: raw.fixed, data: raw.data)
                    }
                } catch {
                    deliver(&batch)
                    return close(reason: "protocol error: \(error)")
                }
                guard frame.type.channel == channel else {
                    deliver(&batch)
                    return close(reason: "protocol error: \(frame.type) frame on the \(channel) channel")
                }
                batch.append(ReceivedFrame(frame, volume: raw.header.volume, held: raw.held))
                if batch.count >= Self.largestBatch { deliver(&batch) }
            } catch {
                deliver(&batch)
                guard error.isClosedByPeer else { return close(reason: error.description) }
                return channelEnded(error)
            }
        }
    }

    /// Hands the frames received so far to the handler.
    private func deliver(_ batch: inout [ReceivedFrame]) {
        guard !batch.isEmpty else { return }
        handler.received(batch, on: self)
        batch.removeAll(keepingCapacity: true)
    }

    /// The peer ended one channel in order. Its other channel may still carry frames (the
    /// reason for a refused handshake): the link ends when both have ended, or a second after
    /// the first.
    private func channelEnded(_ error: TransportError) {
        let both = ended.withLock { () -> Bool in
            endedChannels += 1
            ended.broadcast()
            return endedChannels >= 2
        }
        if both { return close(reason: error.description) }
        let deadline = Date().addingTimeInterval(1)
        ended.withLock {
            while endedChannels < 2, !isClosed, ended.wait(until: deadline) {}
        }
        close(reason: error.description)
    }

    // MARK: - Closing

    func close(reason: String) {
        let first = closed.withLock { wasClosed -> Bool in
            defer { wasClosed = true }
            return !wasClosed
        }
        guard first else { return }
        for wire in [dataWire, metaWire] { wire.close() }
        for outbox in outboxes { outbox.stop() }
        ended.withLock { ended.broadcast() }
        handler.linkLost(self, reason: reason)
    }

    /// Sends what is queued, ends both channels (the peer sees the end after everything we
    /// sent), waits for the peer to end its side — so no unread data turns our close into a
    /// reset that could destroy frames the peer has not read — or for `timeout`, then closes.
    func closeGracefully(timeout: Double) {
        guard !isClosed else { return }
        let deadline = Date().addingTimeInterval(timeout)
        for outbox in outboxes { outbox.finish() }
        ended.withLock {
            while (finishedChannels < 2 || endedChannels < 2), !isClosed, ended.wait(until: deadline) {}
        }
        close(reason: "closed")
    }

    private func channelFinished(_ channel: Channel) {
        wire(channel).shutdownSending()
        ended.withLock {
            finishedChannels += 1
            ended.broadcast()
        }
    }

    func join() {
        for outbox in outboxes { outbox.join() }
        for thread in receivers { thread.join() }
    }
}
