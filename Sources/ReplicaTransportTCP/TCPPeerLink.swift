import Foundation
import ReplicaCore
import Synchronization

/// A link over two TCP connections: frames of the data channel on one, the meta channel
/// (acks, pings) on the other. Each connection has a dedicated receive thread; senders hold
/// the channel's lock while they write header, fixed payload and data in one gather write.
public final class TCPPeerLink: PeerLink, @unchecked Sendable {
    private let data: BlockingSocket
    private let meta: BlockingSocket
    private let dataLock = NSLockShim()
    private let metaLock = NSLockShim()
    private let closed = Mutex(false)
    /// Channels whose stream the peer ended cleanly.
    private let endedChannels = Mutex(0)
    private let handler: any PeerLinkHandler
    /// At most this many received frames go to the handler at once.
    static let largestBatch = 64
    /// True for the side that accepted the meta connection.
    public let resolveConflicts: Bool
    /// "local -> peer".
    public let endpoints: String

    init(data: BlockingSocket, meta: BlockingSocket, resolveConflicts: Bool, endpoints: String, handler: any PeerLinkHandler) {
        self.data = data
        self.meta = meta
        self.resolveConflicts = resolveConflicts
        self.endpoints = endpoints
        self.handler = handler
    }

    /// True once the link was closed.
    public var isClosed: Bool { closed.withLock { $0 } }

    /// Starts the two receive threads.
    func startReceiving() {
        for (socket, name) in [(data, "data"), (meta, "meta")] {
            let thread = Thread { [self] in self.receiveLoop(socket) }
            thread.name = "replica-rx-\(name)"
            thread.start()
        }
    }

    public func send(_ frame: Frame, volume: UInt16) throws(TransportError) {
        try send([frame], volume: volume)
    }

    /// Frames whose data is at most this large are copied into one buffer with their headers
    /// (one contiguous write); larger data goes out from its own array in a gather write.
    static let copiedDataLimit = 64 << 10

    public func send(_ frames: [Frame], volume: UInt16) throws(TransportError) {
        for channel in [Channel.data, .meta] {
            let group = frames.filter { $0.type.channel == channel }
            guard !group.isEmpty else { continue }
            try onChannel(channel) { socket throws(TransportError) in try Self.write(group, volume: volume, to: socket) }
        }
    }

    public func sendWithoutWaiting(_ frames: [Frame], volume: UInt16) throws(TransportError) -> PendingSend? {
        guard let channel = frames.first?.type.channel else { return nil }
        precondition(frames.allSatisfy { $0.type.channel == channel }, "frames of one channel")
        var packed: [UInt8] = []
        for frame in frames {
            let payload = Self.packHeader(frame, volume: volume, into: &packed)
            // Large data is not copied into one buffer: it goes out by the waiting path, whole.
            guard payload.count <= Self.copiedDataLimit else {
                return { [self] () throws(TransportError) in try send(frames, volume: volume) }
            }
            packed += payload
        }
        let sent = try onChannel(channel) { socket throws(TransportError) in
            try packed.withUnsafeBytes { bytes in Result { () throws(TransportError) in try socket.sendWithoutWaiting(bytes) } }.get()
        }
        guard sent < packed.count else { return nil }
        let rest = Array(packed[sent...])
        return { [self] () throws(TransportError) in
            try onChannel(channel) { socket throws(TransportError) in
                try rest.withUnsafeBytes { bytes in Result { () throws(TransportError) in try socket.writeAll([bytes]) } }.get()
            }
        }
    }

    /// Spliced data (``SplicedRead``) goes from its pipe to the socket without a copy, after
    /// the frame's header; other held data is copied into the frame.
    public func send(_ frame: Frame, appending data: HeldData, volume: UInt16) throws(TransportError) {
        guard let spliced = data.storage as? SplicedRead else { return try send(data.copied(into: frame), volume: volume) }
        var head: [UInt8] = []
        let own = Self.packHeader(frame, volume: volume, extraData: spliced.count, into: &head)
        head += own
        try onChannel(frame.type.channel) { socket throws(TransportError) in
            try head.withUnsafeBytes { bytes in Result { () throws(TransportError) in try socket.writeAll([bytes], more: true) } }.get()
            try socket.withDescriptor { descriptor throws(TransportError) in try spliced.send(to: descriptor, more: false) }
        }
    }

    /// Runs `body` with `channel`'s socket under that channel's lock; a failure closes the link.
    private func onChannel<Value>(_ channel: Channel, _ body: (BlockingSocket) throws(TransportError) -> Value) throws(TransportError) -> Value {
        let socket = channel == .data ? data : meta
        let lock = channel == .data ? dataLock : metaLock
        let result: Result<Value, TransportError> = lock.withLock { Result { () throws(TransportError) in try body(socket) } }
        switch result {
        case .success(let value): return value
        case .failure(let error):
            close(reason: error.description)
            throw error
        }
    }

    /// Appends `frame`'s header and fixed part to `packed`; returns its data, not appended.
    /// `extraData`: bytes sent after the frame's own data (held data), counted in the header.
    private static func packHeader(_ frame: Frame, volume: UInt16, extraData: Int = 0, into packed: inout [UInt8]) -> [UInt8] {
        let fixed = FrameCodec.encodeFixedPayload(frame)
        let payload = FrameCodec.dataBytes(frame)
        packed += FrameHeader(type: frame.type, volume: volume, length: UInt32(fixed.count + payload.count + extraData)).encoded()
        packed += fixed
        return payload
    }

    /// Writes `frames` in order: runs of small frames packed into one buffer, each large
    /// data payload sent from its own array after its packed header.
    private static func write(_ frames: [Frame], volume: UInt16, to socket: BlockingSocket) throws(TransportError) {
        var packed: [UInt8] = []
        for frame in frames {
            let payload = packHeader(frame, volume: volume, into: &packed)
            if payload.count <= copiedDataLimit {
                packed += payload
                continue
            }
            try packed.withUnsafeBytes { head in
                payload.withUnsafeBytes { body in Result { () throws(TransportError) in try socket.writeAll([head, body]) } }
            }.get()
            packed.removeAll(keepingCapacity: true)
        }
        if !packed.isEmpty {
            try packed.withUnsafeBytes { bytes in Result { () throws(TransportError) in try socket.writeAll([bytes]) } }.get()
        }
    }

    private func receiveLoop(_ socket: BlockingSocket) {
        let reader = BufferedFrameReader(socket: socket)
        let channel = socket === data ? Channel.data : .meta
        var batch: [ReceivedFrame] = []
        while !isClosed {
            do throws(TransportError) {
                // Frames that arrived together go to the handler together, before this thread
                // waits for more.
                if !reader.nextFrameIsBuffered { deliver(&batch) }
                let raw = try reader.next()
                let frame: Frame
                do {
                    if let held = raw.held {
                        frame = try FrameCodec.decode(raw.header, fixed: raw.fixed, heldCount: held.count)
                    } else {
                        frame = try FrameCodec.decode(raw.header, fixed: raw.fixed, data: raw.data)
                    }
                } catch {
                    deliver(&batch)
                    close(reason: "protocol error: \(error)")
                    return
                }
                if frame.type.channel != channel {
                    deliver(&batch)
                    close(reason: "protocol error: \(frame.type) frame on the wrong channel")
                    return
                }
                batch.append(ReceivedFrame(frame, held: raw.held))
                if batch.count >= Self.largestBatch { deliver(&batch) }
            } catch {
                deliver(&batch)
                guard error.isClosedByPeer else {
                    close(reason: error.description)
                    return
                }
                // The peer ended this channel in order. Its other channel may still carry
                // frames (the reason for a refused handshake): the link ends when both have
                // ended, or a second after the first.
                let ended = endedChannels.withLock { count -> Int in
                    count += 1
                    return count
                }
                if ended >= 2 {
                    close(reason: error.description)
                } else {
                    let other = Thread { [self] in
                        let deadline = Date().addingTimeInterval(1)
                        while !isClosed && Date() < deadline { usleep(10_000) }
                        close(reason: error.description)
                    }
                    other.start()
                }
                return
            }
        }
    }

    /// Hands the frames received so far to the handler.
    private func deliver(_ batch: inout [ReceivedFrame]) {
        guard !batch.isEmpty else { return }
        handler.received(batch, on: self)
        batch.removeAll()
    }

    public func close() { close(reason: "closed") }

    /// FIN on both connections (after what was sent), then waits for the receive threads to
    /// see the peer's end — so no unread data is left to turn our close into a reset that
    /// could destroy frames the peer has not read yet — or for `timeout`, then closes.
    public func closeGracefully(timeout: Double) {
        guard !isClosed else { return }
        dataLock.withLock { data.shutdownWrite() }
        metaLock.withLock { meta.shutdownWrite() }
        let deadline = Date().addingTimeInterval(timeout)
        while !isClosed && Date() < deadline { usleep(10_000) }
        close(reason: "closed")
    }

    func close(reason: String) {
        let first = closed.withLock { wasClosed -> Bool in
            defer { wasClosed = true }
            return !wasClosed
        }
        guard first else { return }
        data.close()
        meta.close()
        handler.linkLost(self, reason: reason)
    }
}
