import Foundation

/// Two connected in-memory message channels with credit-based flow control, as an RDMA queue
/// pair has it: each side may have at most `credits` messages on their way to the other
/// (the receive buffers the other posted); a message's credit comes back when the receiver
/// takes it. A receiver that stops taking messages stops its sender — the back-pressure a
/// frozen peer exerts — which tests use to check that the link's queues stay bounded.
public final class InMemoryMessageChannel: MessageChannel, @unchecked Sendable {
    /// The state both ends share, guarded by its condition.
    private final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        /// Messages on their way, per receiving side (0 or 1).
        var inFlight: [[[UInt8]]] = [[], []]
        /// A side ended its sending (the other side receives the end after its messages).
        var sendingEnded = [false, false]
        var closed = false
        /// Receiving side whose messages are held (a frozen peer): it takes none.
        var frozen = [false, false]
    }

    private let shared: Shared
    private let side: Int
    private let credits: Int
    public let maximumMessageSize: Int

    private init(shared: Shared, side: Int, credits: Int, maximumMessageSize: Int) {
        self.shared = shared
        self.side = side
        self.credits = credits
        self.maximumMessageSize = maximumMessageSize
    }

    /// Two ends of one channel, each allowed `credits` messages in flight toward the other.
    public static func pair(credits: Int = 64, maximumMessageSize: Int = FrameHeader.size + 64 + FrameLimits.maximumRequestSize)
        -> (InMemoryMessageChannel, InMemoryMessageChannel) {
        let shared = Shared()
        return (InMemoryMessageChannel(shared: shared, side: 0, credits: credits, maximumMessageSize: maximumMessageSize),
                InMemoryMessageChannel(shared: shared, side: 1, credits: credits, maximumMessageSize: maximumMessageSize))
    }

    /// Makes this end stop taking messages (`true`), as a peer that stopped would, or go on.
    public func freezeReceiving(_ frozen: Bool) {
        shared.condition.withLock {
            shared.frozen[side] = frozen
            shared.condition.broadcast()
        }
    }

    /// Messages sent by the other end that this end has not taken.
    public var messagesWaiting: Int { shared.condition.withLock { shared.inFlight[side].count } }

    private var peer: Int { 1 - side }

    public func trySend(_ message: [UInt8]) throws(TransportError) -> Bool {
        shared.condition.lock()
        defer { shared.condition.unlock() }
        guard !shared.closed, !shared.sendingEnded[side] else { throw TransportError("the channel is closed") }
        guard shared.inFlight[peer].count < credits else { return false }
        shared.inFlight[peer].append(message)
        shared.condition.broadcast()
        return true
    }

    public func waitForCredit(milliseconds: Int32) throws(TransportError) -> Bool {
        shared.condition.lock()
        defer { shared.condition.unlock() }
        let deadline = Date().addingTimeInterval(Double(max(milliseconds, 0)) / 1000)
        while shared.inFlight[peer].count >= credits {
            if shared.closed { throw TransportError("the channel is closed") }
            // (NSCondition cannot wait until Date.distantFuture: it traps.)
            if milliseconds < 0 {
                shared.condition.wait()
            } else if !shared.condition.wait(until: deadline) {
                return false
            }
        }
        if shared.closed { throw TransportError("the channel is closed") }
        return true
    }

    public func receive(milliseconds: Int32) throws(TransportError) -> [UInt8]? {
        shared.condition.lock()
        defer { shared.condition.unlock() }
        let deadline = Date().addingTimeInterval(Double(max(milliseconds, 0)) / 1000)
        while true {
            if shared.closed { throw TransportError("the channel is closed") }
            if !shared.frozen[side], !shared.inFlight[side].isEmpty {
                shared.condition.broadcast()  // a credit back to the sender
                return shared.inFlight[side].removeFirst()
            }
            if shared.sendingEnded[peer], shared.inFlight[side].isEmpty { throw TransportError(TransportError.closedByPeer) }
            if milliseconds == 0 { return nil }
            if milliseconds < 0 {
                shared.condition.wait()
            } else if !shared.condition.wait(until: deadline) {
                return nil
            }
        }
    }

    public func shutdownSending() {
        shared.condition.withLock {
            shared.sendingEnded[side] = true
            shared.condition.broadcast()
        }
    }

    public func close() {
        shared.condition.withLock {
            shared.closed = true
            shared.condition.broadcast()
        }
    }
}
