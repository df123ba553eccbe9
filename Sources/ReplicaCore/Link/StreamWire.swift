/// Frames of one send on a byte stream: small frames packed into one buffer (one contiguous
/// write), each large data payload as its own segment after its header (a gather write, no
/// copy), held data after its header (spliced from its pipe where the stream can).
struct StreamBatch: OutboxItem {
    enum Segment: Sendable {
        case bytes(ArraySlice<UInt8>)
        case held(any HeldDataStorage)

        var count: Int {
            switch self {
            case .bytes(let bytes): bytes.count
            case .held(let storage): storage.count
            }
        }
    }

    var segments: [Segment]
    var byteCount: Int

    /// True when every segment is in memory.
    var inMemory: Bool { segments.allSatisfy { if case .bytes = $0 { true } else { false } } }
}

/// One channel of a link on a byte stream (TCP, TLS): frames are the header, the fixed part
/// and the data back to back (docs/PROTOCOL.md).
final class StreamWire: FrameWire, @unchecked Sendable {
    private let stream: any ByteStream
    // Used by the channel's one receive thread only.
    private let reader: StreamFrameReader

    /// Frames whose data is at most this large are copied into one buffer with their headers;
    /// larger data goes out from its own array in a gather write.
    static let copiedDataLimit = 64 << 10
    /// A send this small is tried at once from the sending thread; larger ones go to the
    /// channel's sender thread (the engine's thread then overlaps its local write with it).
    static let triedAtOnceLimit = 64 << 10

    init(_ stream: any ByteStream) {
        self.stream = stream
        reader = StreamFrameReader(stream: stream)
    }

    func pack(_ frames: [OutgoingFrame]) -> StreamBatch {
        // One buffer, sized once, for the headers, fixed parts and copied data (growing it
        // frame by frame reallocated it two or three times per frame).
        var capacity = 0
        for outgoing in frames {
            let dataCount = FrameCodec.dataCount(outgoing.frame)
            capacity += FrameHeader.size + outgoing.frame.type.fixedPayloadSize + (dataCount <= Self.copiedDataLimit ? dataCount : 0)
        }
        var segments: [StreamBatch.Segment] = []
        var packed: [UInt8] = []
        packed.reserveCapacity(capacity)
        var total = 0
        for outgoing in frames {
            let frame = outgoing.frame
            let data = FrameCodec.dataBytes(frame)
            let extra = outgoing.held?.count ?? 0
            let copied = data.count <= Self.copiedDataLimit
            FrameCodec.append(frame, volume: outgoing.volume, data: data, extraDataCount: extra, withData: copied, to: &packed)
            total += FrameHeader.size + frame.type.fixedPayloadSize + data.count + extra
            if !copied {
                segments.append(.bytes(packed[...]))
                segments.append(.bytes(data[...]))
                packed = []
            }
            if let held = outgoing.held {
                if !packed.isEmpty { segments.append(.bytes(packed[...])) }
                segments.append(.held(held))
                packed = []
            }
        }
        if !packed.isEmpty { segments.append(.bytes(packed[...])) }
        return StreamBatch(segments: segments, byteCount: total)
    }

    func triesAtOnce(_ item: StreamBatch) -> Bool { item.byteCount <= Self.triedAtOnceLimit && item.inMemory }

    func tryWrite(_ item: StreamBatch) throws(TransportError) -> StreamBatch? {
        let sent = try Self.withBuffers(item.segments) { buffers throws(TransportError) in try stream.sendWithoutWaiting(buffers) }
        guard sent < item.byteCount else { return nil }
        return StreamBatch(segments: Self.dropping(sent, from: item.segments), byteCount: item.byteCount - sent)
    }

    func write(_ items: [StreamBatch]) throws(TransportError) {
        // Runs of in-memory segments go together; held data is sent where it is.
        var run: [StreamBatch.Segment] = []
        for segment in items.lazy.flatMap(\.segments) {
            guard case .held(let storage) = segment else {
                run.append(segment)
                continue
            }
            try sendHeld(storage, after: run)
            run.removeAll()
        }
        if !run.isEmpty { try Self.withBuffers(run) { buffers throws(TransportError) in try stream.send(buffers, more: false) } }
    }

    /// Sends `head` (in memory), then the held bytes: spliced from their pipe where both the
    /// stream and the storage can, else copied out first.
    private func sendHeld(_ storage: any HeldDataStorage, after head: [StreamBatch.Segment]) throws(TransportError) {
        if let splicing = stream.splicing, let spliced = storage as? SplicedRead {
            let joined = head.reduce(into: [UInt8]()) { if case .bytes(let bytes) = $1 { $0 += bytes } }
            return try joined.withTransportBytes { buffer throws(TransportError) in try splicing.sendSpliced(head: buffer, spliced) }
        }
        let bytes: [UInt8]
        do {
            bytes = try storage.takeBytes()
        } catch {
            throw TransportError("held data to send could not be read: \(error)")
        }
        try Self.withBuffers(head + [.bytes(bytes[...])]) { buffers throws(TransportError) in try stream.send(buffers, more: false) }
    }

    var nextFrameIsReady: Bool { reader.nextFrameIsBuffered }

    func nextFrame() throws(TransportError) -> WireFrame {
        let raw = try reader.next()
        return WireFrame(header: raw.header, fixed: raw.fixed, data: raw.data, held: raw.held)
    }

    func shutdownSending() { stream.shutdownSending() }

    func close() { stream.close() }

    /// Runs `body` with the in-memory segments as buffers.
    private static func withBuffers<Value>(_ segments: [StreamBatch.Segment],
                                           _ body: ([UnsafeRawBufferPointer]) throws(TransportError) -> Value) throws(TransportError) -> Value {
        let slices = segments.compactMap { segment -> ArraySlice<UInt8>? in
            if case .bytes(let bytes) = segment { bytes } else { nil }
        }
        return try slices.withUnsafeBuffers(body)
    }

    /// `segments` without their first `count` bytes.
    private static func dropping(_ count: Int, from segments: [StreamBatch.Segment]) -> [StreamBatch.Segment] {
        var left = count
        var rest: [StreamBatch.Segment] = []
        for segment in segments {
            guard left > 0 else {
                rest.append(segment)
                continue
            }
            switch segment {
            case .bytes(let bytes) where bytes.count > left:
                rest.append(.bytes(bytes.dropFirst(left)))
                left = 0
            case .bytes(let bytes):
                left -= bytes.count
            case .held:
                rest.append(segment)
                left = 0
            }
        }
        return rest
    }
}

extension Array where Element == ArraySlice<UInt8> {
    /// Calls `body` with pointers to every slice's bytes (kept valid for the call).
    func withUnsafeBuffers<Value>(_ body: ([UnsafeRawBufferPointer]) throws(TransportError) -> Value) throws(TransportError) -> Value {
        func nest(_ index: Int, _ collected: inout [UnsafeRawBufferPointer]) throws(TransportError) -> Value {
            guard index < count else { return try body(collected) }
            return try self[index].withUnsafeBytes { buffer in
                collected.append(buffer)
                return Result { () throws(TransportError) in try nest(index + 1, &collected) }
            }.get()
        }
        var collected: [UnsafeRawBufferPointer] = []
        collected.reserveCapacity(count)
        return try nest(0, &collected)
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` for a body that throws ``TransportError``.
    func withTransportBytes<Value>(_ body: (UnsafeRawBufferPointer) throws(TransportError) -> Value) throws(TransportError) -> Value {
        try withUnsafeBytes { buffer in Result { () throws(TransportError) in try body(buffer) } }.get()
    }
}
