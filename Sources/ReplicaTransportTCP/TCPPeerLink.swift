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
        let fixed = FrameCodec.encodeFixedPayload(frame)
        let payload = FrameCodec.dataBytes(frame)
        let header = FrameHeader(type: frame.type, volume: volume, length: UInt32(fixed.count + payload.count)).encoded()
        let channel = frame.type.channel
        let socket = channel == .data ? data : meta
        let lock = channel == .data ? dataLock : metaLock
        let result: Result<Void, TransportError> = lock.withLock {
            header.withUnsafeBytes { h in
                fixed.withUnsafeBytes { f in
                    payload.withUnsafeBytes { p in
                        Result { () throws(TransportError) in try socket.writeAll([h, f, p]) }
                    }
                }
            }
        }
        if case .failure(let error) = result {
            close(reason: error.description)
            throw error
        }
    }

    private func receiveLoop(_ socket: BlockingSocket) {
        var headerBytes = [UInt8](repeating: 0, count: FrameHeader.size)
        while !isClosed {
            do throws(TransportError) {
                try headerBytes.withUnsafeMutableBytes { buffer in Result { () throws(TransportError) in try socket.readExactly(buffer) } }.get()
                let header: FrameHeader
                do {
                    header = try FrameHeader(bytes: headerBytes)
                } catch {
                    close(reason: "protocol error: \(error)")
                    return
                }
                // The fixed part first, then the data straight into its own buffer (no zero-fill,
                // no copy afterwards); both sizes are bounded by the header check.
                let fixedSize = header.type.fixedPayloadSize
                var fixed = [UInt8](repeating: 0, count: fixedSize)
                if fixedSize > 0 {
                    try fixed.withUnsafeMutableBytes { buffer in Result { () throws(TransportError) in try socket.readExactly(buffer) } }.get()
                }
                let dataSize = Int(header.length) - fixedSize
                var failure: TransportError?
                let payload = [UInt8](unsafeUninitializedCapacity: dataSize) { buffer, count in
                    do throws(TransportError) {
                        if dataSize > 0 { try socket.readExactly(UnsafeMutableRawBufferPointer(buffer)) }
                        count = dataSize
                    } catch {
                        failure = error
                        count = 0
                    }
                }
                if let failure { throw failure }
                let frame: Frame
                do {
                    frame = try FrameCodec.decode(header, fixed: fixed, data: payload)
                } catch {
                    close(reason: "protocol error: \(error)")
                    return
                }
                if frame.type.channel != (socket === data ? Channel.data : .meta) {
                    close(reason: "protocol error: \(frame.type) frame on the wrong channel")
                    return
                }
                handler.received(frame, volume: header.volume, on: self)
            } catch {
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
