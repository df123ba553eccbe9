/// Frames of one send on a message channel: one message per frame (its header, fixed part and
/// data back to back), each sent with one of the peer's receive credits.
struct MessageBatch: OutboxItem {
    var messages: ArraySlice<[UInt8]>
    var byteCount: Int
}

/// One channel of a link on a message channel with credits (RDMA; memory in tests and the
/// simulator's model): every frame is one message, checked against its header when it arrives.
/// A sender out of credits waits on the channel's sender thread — never in an engine step.
final class MessageWire: FrameWire, @unchecked Sendable {
    private let channel: any MessageChannel
    // Used by the channel's one receive thread only.
    private var nextMessage: [UInt8]?

    init(_ channel: any MessageChannel) { self.channel = channel }

    func pack(_ frames: [OutgoingFrame]) -> MessageBatch {
        var messages: [[UInt8]] = []
        var total = 0
        for outgoing in frames {
            var frame = outgoing.frame
            if let held = outgoing.held {
                // No zero-copy path on a message channel: the held bytes join their frame.
                frame = frame.replacingData((try? held.takeBytes()) ?? [])
            }
            let (header, payload) = FrameCodec.encode(frame, volume: outgoing.volume)
            messages.append(header + payload)
            total += header.count + payload.count
        }
        return MessageBatch(messages: messages[...], byteCount: total)
    }

    func triesAtOnce(_ item: MessageBatch) -> Bool { true }

    func tryWrite(_ item: MessageBatch) throws(TransportError) -> MessageBatch? {
        var rest = item
        while let message = rest.messages.first {
            try checkSize(message)
            guard try channel.trySend(message) else { return rest }
            rest.messages.removeFirst()
            rest.byteCount -= message.count
        }
        return nil
    }

    func write(_ items: [MessageBatch]) throws(TransportError) {
        for item in items {
            for message in item.messages {
                try checkSize(message)
                while try !channel.trySend(message) { _ = try channel.waitForCredit(milliseconds: -1) }
            }
        }
    }

    private func checkSize(_ message: [UInt8]) throws(TransportError) {
        guard message.count <= channel.maximumMessageSize else {
            throw TransportError("a frame of \(message.count) bytes is larger than the channel's messages (\(channel.maximumMessageSize) bytes)")
        }
    }

    var nextFrameIsReady: Bool {
        if nextMessage != nil { return true }
        nextMessage = try? channel.receive(milliseconds: 0)
        return nextMessage != nil
    }

    func nextFrame() throws(TransportError) -> WireFrame {
        let message: [UInt8]
        if let waiting = nextMessage {
            message = waiting
            nextMessage = nil
        } else {
            guard let received = try channel.receive(milliseconds: -1) else { throw TransportError("the channel returned no message") }
            message = received
        }
        guard message.count >= FrameHeader.size else {
            throw TransportError("protocol error: a message of \(message.count) bytes is shorter than a frame header")
        }
        let header: FrameHeader
        do {
            header = try FrameHeader(bytes: Array(message[0..<FrameHeader.size]))
        } catch {
            throw TransportError("protocol error: \(error)")
        }
        guard Int(header.length) == message.count - FrameHeader.size else {
            throw TransportError("protocol error: \(header.type) frame header announces \(header.length) payload bytes, the message carries \(message.count - FrameHeader.size)")
        }
        let fixedEnd = FrameHeader.size + header.type.fixedPayloadSize
        return WireFrame(header: header, fixed: Array(message[FrameHeader.size..<fixedEnd]), data: Array(message[fixedEnd...]), held: nil)
    }

    func shutdownSending() { channel.shutdownSending() }

    func close() { channel.close() }
}
