import Foundation

/// Replies encoded and waiting to be sent, so that replies that complete together leave in
/// one gather write. Neither appending nor sending waits for the client: what its socket does
/// not take at once goes out from a thread of the connection's own (replies are sent from
/// engine steps, which must never wait for a client that stopped reading).
final class NBDReplyOutbox: @unchecked Sendable {
    private let state = NSCondition()
    /// Reply headers and small data packed together; large read data as their own segments.
    private var segments: [[UInt8]] = []
    private var lastIsPacked = false
    /// A thread is writing what the socket did not take at once.
    private var draining = false
    private let drainQueue = DispatchQueue(label: "replica.nbd.replies")

    /// Read data larger than this is sent from its own array, not copied.
    static let copiedDataLimit = 64 << 10

    /// Queues a reply: its header and data (empty for most replies).
    func append(_ header: [UInt8], _ data: [UInt8]) {
        state.withLock {
            if lastIsPacked {
                segments[segments.count - 1] += header
            } else {
                segments.append(header)
                lastIsPacked = true
            }
            guard !data.isEmpty else { return }
            if data.count <= Self.copiedDataLimit {
                segments[segments.count - 1] += data
            } else {
                segments.append(data)
                lastIsPacked = false
            }
        }
    }

    /// Sends what is queued as far as the socket takes it now; the rest goes from the drain
    /// thread. A failed write drops the replies: the reader sees the connection end.
    func send(to socket: NBDSocket) {
        // Again while replies were appended meanwhile (their own sends found this one busy).
        while let taken = take() {
            let rest: [[UInt8]]
            do {
                rest = try socket.write(taken, waiting: false)
            } catch {
                return finishDraining(dropping: true)
            }
            guard rest.isEmpty else {
                drainQueue.async { [self] in drain(rest, to: socket) }
                return
            }
            finishDraining(dropping: false)
        }
    }

    /// Waits until nothing queued is left unsent (or sending failed).
    func sendAll(to socket: NBDSocket) {
        send(to: socket)
        state.withLock {
            while draining { state.wait() }
        }
    }

    /// Everything queued, with the right to write it; nil when empty or another thread writes.
    private func take() -> [[UInt8]]? {
        state.withLock {
            guard !draining, !segments.isEmpty else { return nil }
            draining = true
            defer {
                segments.removeAll()
                lastIsPacked = false
            }
            return segments
        }
    }

    private func drain(_ first: [[UInt8]], to socket: NBDSocket) {
        var pending = first
        while !pending.isEmpty {
            do {
                _ = try socket.write(pending, waiting: true)
            } catch {
                return finishDraining(dropping: true)
            }
            pending = state.withLock {
                defer {
                    segments.removeAll()
                    lastIsPacked = false
                }
                return segments
            }
        }
        finishDraining(dropping: false)
    }

    private func finishDraining(dropping: Bool) {
        state.withLock {
            if dropping {
                segments.removeAll()
                lastIsPacked = false
            }
            draining = false
            state.broadcast()
        }
    }
}
