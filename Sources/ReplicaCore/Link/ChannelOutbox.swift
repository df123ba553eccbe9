import Foundation
import Synchronization

/// Something queued on one channel of a link, and the bytes it counts for.
protocol OutboxItem: Sendable {
    /// Bytes it puts on the channel.
    var byteCount: Int { get }
}

/// The frames of one channel of a link that its transport did not take at once, sent in order
/// by the channel's own sender thread — shared by every link shape (``StreamPeerLink``,
/// ``MessagePeerLink``), so that ordering, accounting and back-pressure are written once.
///
/// ``submit(_:)`` never waits: with nothing queued and no send running it tries the channel at
/// once (the common case: a frame leaves from the thread that made it); what the channel does
/// not take goes into the queue, whose size is ``queuedBytes``. The runtime bounds it by
/// holding application requests back while it is full (`max-buffers`); when a send brings it
/// below ``lowMark``, ``Events/drained`` runs.
final class ChannelOutbox<Item: OutboxItem>: @unchecked Sendable {
    /// Tries to put `item` on the channel without waiting: nil when all of it went, else the
    /// rest (which then goes first).
    typealias TryWrite = (Item) throws(TransportError) -> Item?
    /// Puts `items` on the channel in order, waiting as long as the peer makes it.
    typealias Write = ([Item]) throws(TransportError) -> Void

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var items: [Item] = []
    private var bytes = 0 {
        didSet { bytesSeen.store(bytes, ordering: .relaxed) }
    }
    /// `bytes`, readable without the lock (the runtime reads it at every request and step).
    private let bytesSeen = Atomic<Int>(0)
    private var busy = false
    private var stopping = false
    private var finishing = false
    private var failed = false
    /// Threads in ``waitUntilEmpty(seconds:)``: only then does the end of a send wake anyone
    /// but the sender thread (a wake-up per frame for nothing was two context switches).
    private var drainWaiters = 0
    private var thread: JoinableThread?

    private let tryWrite: TryWrite
    private let write: Write
    /// The queue's size below which ``Events/drained`` runs.
    let lowMark: Int
    /// What the owner hears. Kept (strongly) until the sender thread ends, then dropped:
    /// the owner usually owns this outbox and these closures refer back to it, and a weak
    /// reference instead gave the owner a side table, which made every retain and release of
    /// it take the slow path (callgrind: about 14 per replicated write). Guarded by `condition`.
    private var events: Events?

    /// What an outbox tells its owner.
    struct Events {
        /// Runs (on the sender thread) after a send that left the queue below ``lowMark`` (the
        /// runtime then lets requests it held back go on; it checks cheaply whether there are any).
        var drained: @Sendable () -> Void
        /// Runs when a send failed (on the thread that sent); the link closes.
        var failed: @Sendable (TransportError) -> Void
        /// Runs (on the sender thread) once everything queued went out after ``finish()``.
        var finished: @Sendable () -> Void
    }

    init(name: String, lowMark: Int, tryWrite: @escaping TryWrite, write: @escaping Write, events: Events) {
        self.tryWrite = tryWrite
        self.write = write
        self.lowMark = lowMark
        self.events = events
        thread = JoinableThread.start(name: name) { [self] in
            run()
            // The thread's work is over: what the events refer to is let go.
            condition.withLock { self.events = nil }
        }
        if thread == nil { self.events = nil }
    }

    /// Bytes queued and not yet handed to the channel.
    var queuedBytes: Int { bytesSeen.load(ordering: .relaxed) }

    /// False when the sender thread could not be started (the link cannot work).
    var isRunning: Bool { thread != nil }

    /// Sends `item` now if the channel takes it and nothing is queued before it, else queues it.
    func submit(_ item: Item, tryNow: Bool = true) {
        condition.lock()
        guard !stopping, !finishing, !failed else { return condition.unlock() }
        guard tryNow, !busy, items.isEmpty else {
            enqueue(item)
            return condition.unlock()
        }
        busy = true
        condition.unlock()
        let rest: Item?
        do {
            rest = try tryWrite(item)
        } catch {
            let failedEvent = condition.withLock {
                busy = false
                failed = true
                condition.broadcast()
                return events?.failed
            }
            failedEvent?(error)
            return
        }
        condition.withLock {
            busy = false
            if let rest { items.insert(rest, at: 0); bytes += rest.byteCount }
            // The sender thread waits while this send runs: it has work now if anything was
            // queued meanwhile (or left over).
            if !items.isEmpty || drainWaiters > 0 { condition.broadcast() }
        }
    }

    private func enqueue(_ item: Item) {
        items.append(item)
        bytes += item.byteCount
        // While a send runs, whoever ends it wakes the sender thread.
        if !busy { condition.broadcast() }
    }

    /// Sends what is queued, then ends: ``onFinished`` runs once it went out.
    func finish() {
        condition.withLock {
            finishing = true
            condition.broadcast()
        }
    }

    /// Stops the sender at once (what is queued is dropped); the caller closes the channel
    /// first, so that a send blocked in it returns.
    func stop() {
        condition.withLock {
            stopping = true
            items.removeAll()
            bytes = 0
            condition.broadcast()
        }
    }

    /// Waits for the sender thread to end (after ``stop()``).
    func join() { thread?.join() }

    /// Waits up to `seconds` until nothing is queued or sending.
    func waitUntilEmpty(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        return condition.withLock {
            drainWaiters += 1
            defer { drainWaiters -= 1 }
            while !items.isEmpty || busy {
                if stopping || failed || !condition.wait(until: deadline) { return items.isEmpty && !busy }
            }
            return true
        }
    }

    private func run() {
        // The sender thread is the only one that drops them (after this returns).
        guard let events = condition.withLock({ events }) else { return }
        while true {
            condition.lock()
            while !stopping && !failed && (busy || items.isEmpty) && !(finishing && items.isEmpty && !busy) { condition.wait() }
            if stopping || failed {
                condition.unlock()
                return
            }
            if items.isEmpty {
                // Finishing, and everything went out.
                condition.unlock()
                return events.finished()
            }
            let batch = items
            let batchBytes = bytes
            items.removeAll(keepingCapacity: true)
            busy = true
            condition.unlock()
            do {
                try write(batch)
            } catch {
                condition.withLock {
                    busy = false
                    failed = true
                    condition.broadcast()
                }
                return events.failed(error)
            }
            let drained = condition.withLock { () -> Bool in
                busy = false
                bytes -= batchBytes
                // This thread goes on without waiting; only someone waiting to drain needs to know.
                if drainWaiters > 0 { condition.broadcast() }
                return bytes < lowMark
            }
            if drained { events.drained() }
        }
    }
}
