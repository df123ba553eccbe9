import Foundation
import Synchronization

/// Two transports joined in memory by message channels with credits (``InMemoryMessageChannel``):
/// the link shape an RDMA transport has, for tests and for programs that replicate between two
/// runtimes in one process. While both ends are started a link is up; when it is closed (by
/// either end, or by ``cut()``) and both are still started, a new one is made after
/// `reconnectDelay`.
public final class InMemoryTransportPair: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var handlers: [(any PeerLinkHandler)?] = [nil, nil]
    private var links: [FramedLink<MessageWire>?] = [nil, nil]
    private var channels: [(data: InMemoryMessageChannel, meta: InMemoryMessageChannel)?] = [nil, nil]
    private var generation = 0
    private var retiring: [FramedLink<MessageWire>] = []
    /// Messages each side may have in flight per channel (the peer's receive buffers).
    public let credits: Int
    /// Pause before a new link is made after one ended, seconds.
    public let reconnectDelay: Double
    /// The bounds the links' queues drain to (``StreamTransportOptions/drainMarkBytes``).
    public let drainMarkBytes: Int

    /// A pair whose links allow `credits` messages in flight per channel and direction.
    public init(credits: Int = 64, reconnectDelay: Double = 0.05, drainMarkBytes: Int = 4 << 20) {
        self.credits = credits
        self.reconnectDelay = reconnectDelay
        self.drainMarkBytes = drainMarkBytes
    }

    /// The transport of side `index` (0 accepts, holding RESOLVE_CONFLICTS; 1 connects).
    public func transport(_ index: Int) -> any Transport { InMemoryTransport(pair: self, side: index) }

    /// Makes side `side` stop taking messages (`true`), as a peer that stopped running would
    /// (its queues fill; the other side runs out of credits), or go on.
    public func freezeReceiving(side: Int, _ frozen: Bool) {
        let current = condition.withLock { channels[side] }
        guard let current else { return }
        // Side `side` receives on its own ends of the channels.
        current.data.freezeReceiving(frozen)
        current.meta.freezeReceiving(frozen)
    }

    /// Breaks the current link (both sides see it lost); a new one follows while both run.
    public func cut() {
        let current = condition.withLock { links }
        for link in current { link?.close(reason: "link cut") }
    }

    fileprivate func start(side: Int, handler: any PeerLinkHandler) {
        let ready = condition.withLock { () -> Bool in
            handlers[side] = handler
            return handlers.allSatisfy { $0 != nil }
        }
        if ready { establish() }
    }

    /// Side `side` stops; with `closeLink` (``Transport/stop()``) its link is closed and every
    /// link's threads are waited for, else (``Transport/stopConnecting()``) nothing waits.
    fileprivate func stop(side: Int, closeLink: Bool) {
        let (current, old) = condition.withLock { () -> (FramedLink<MessageWire>?, [FramedLink<MessageWire>]) in
            handlers[side] = nil
            generation += 1
            guard closeLink else { return (nil, []) }
            defer {
                retiring.removeAll()
                // The links keep their handlers (the runtimes): let them go.
                links[side] = nil
            }
            return (links[side], retiring)
        }
        current?.close(reason: "closed")
        current?.join()
        for link in old { link.join() }
    }

    /// Makes a link between the two started sides.
    private func establish() {
        let made = condition.withLock { () -> [(FramedLink<MessageWire>, any PeerLinkHandler)]? in
            guard let first = handlers[0], let second = handlers[1], links.allSatisfy({ $0 == nil || $0!.isClosed }) else { return nil }
            for link in links.compactMap({ $0 }) { retiring.append(link) }
            let (data0, data1) = InMemoryMessageChannel.pair(credits: credits)
            let (meta0, meta1) = InMemoryMessageChannel.pair(credits: credits)
            channels = [(data0, meta0), (data1, meta1)]
            let observers = [first, second].enumerated().map { index, handler in
                LinkLossObserver(handler) { [weak self] in self?.linkLost() }
            }
            let link0 = FramedLink(data: MessageWire(data0), meta: MessageWire(meta0), resolveConflicts: true,
                                   endpoints: "memory <- memory", handler: observers[0])
            let link1 = FramedLink(data: MessageWire(data1), meta: MessageWire(meta1), resolveConflicts: false,
                                   endpoints: "memory -> memory", handler: observers[1])
            links = [link0, link1]
            return [(link0, first), (link1, second)]
        }
        guard let made else { return }
        for (link, _) in made { _ = link.startSending(lowMark: drainMarkBytes) }
        for (link, handler) in made { handler.linkEstablished(link) }
        for (link, _) in made { _ = link.startReceiving() }
    }

    /// A link ended: the other end is closed too, and a new link follows while both run.
    private func linkLost() {
        let (current, wanted) = condition.withLock { () -> ([FramedLink<MessageWire>], Int) in (links.compactMap { $0 }, generation) }
        for link in current { link.close(reason: "the peer closed the link") }
        Thread.detachNewThread { [weak self] in
            guard let self else { return }
            Thread.sleep(forTimeInterval: reconnectDelay)
            let still = condition.withLock { generation == wanted }
            if still { establish() }
        }
    }
}

/// One side of an ``InMemoryTransportPair``.
final class InMemoryTransport: Transport, @unchecked Sendable {
    private let pair: InMemoryTransportPair
    private let side: Int

    init(pair: InMemoryTransportPair, side: Int) {
        self.pair = pair
        self.side = side
    }

    var kind: String { "memory" }
    var lastFailure: String? { nil }

    func start(handler: any PeerLinkHandler) throws(TransportError) { pair.start(side: side, handler: handler) }
    func stop() { pair.stop(side: side, closeLink: true) }
    func stopConnecting() { pair.stop(side: side, closeLink: false) }
}
