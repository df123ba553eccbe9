/// The 16-byte frame header: magic, version, type, flags, volume, payload length.
public struct FrameHeader: Sendable, Equatable {
    /// "RPLC".
    public static let magic: UInt32 = 0x5250_4C43
    /// The protocol version this code speaks.
    public static let version: UInt8 = 1
    /// Size on the wire.
    public static let size = 16

    /// The frame type.
    public var type: FrameType
    /// The volume number the frame is about (0 for connection-wide frames).
    public var volume: UInt16
    /// Bytes of payload after the header.
    public var length: UInt32

    /// Creates a header.
    public init(type: FrameType, volume: UInt16, length: UInt32) {
        self.type = type
        self.volume = volume
        self.length = length
    }

    /// The 16 header bytes.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.size)
        write(to: &writer)
        return writer.bytes
    }

    /// Appends the 16 header bytes to `writer`: magic, version, type, flags (0) in one
    /// big-endian word; volume, reserved (0), length in the other — one append, not seven.
    func write(to writer: inout ByteWriter) {
        let first = UInt64(Self.magic) << 32 | UInt64(Self.version) << 24 | UInt64(type.rawValue) << 16
        let second = UInt64(volume) << 48 | UInt64(length)
        writer.put(first)
        writer.put(second)
    }

    /// Decodes and checks a header: magic, version, known type, reserved fields zero, and a
    /// payload length that fits the type. Every violation is a ``ProtocolError``.
    public init(bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count == Self.size else { throw ProtocolError("frame header of \(bytes.count) bytes, expected 16") }
        var reader = ByteReader(bytes)
        let magic = reader.get(UInt32.self)
        guard magic == Self.magic else {
            // A TLS record (content type 20...23, version 3.x) where a frame was due.
            let tls = (0x14...0x17).contains(magic >> 24) && (magic >> 16) & 0xFF == 0x03
            throw ProtocolError("wrong magic 0x\(String(magic, radix: 16)) (expected 0x52504c43)"
                                + (tls ? ": a TLS record, the peer has `tls yes` and this node has not (no fallback to plain text)" : ""))
        }
        let version = reader.get(UInt8.self)
        guard version == Self.version else { throw ProtocolError("unsupported protocol version \(version) (this node speaks \(Self.version))") }
        let rawType = reader.get(UInt8.self)
        guard let type = FrameType(rawValue: rawType) else { throw ProtocolError("unknown frame type \(rawType)") }
        let flags = reader.get(UInt16.self)
        let volume = reader.get(UInt16.self)
        let reserved = reader.get(UInt16.self)
        guard flags == 0, reserved == 0 else { throw ProtocolError("reserved header fields are not zero (flags 0x\(String(flags, radix: 16)), reserved 0x\(String(reserved, radix: 16)))") }
        let length = reader.get(UInt32.self)
        let minimum = type.fixedPayloadSize, maximum = type.fixedPayloadSize + type.maximumDataSize
        guard length >= minimum, length <= maximum else {
            throw ProtocolError("\(type) frame with \(length) payload bytes (allowed \(minimum)...\(maximum))")
        }
        self.init(type: type, volume: volume, length: length)
    }
}

/// Encodes and decodes frames. Encoding returns the header and payload separately so a
/// transport can send them with one gather write and no copy of the data.
public enum FrameCodec {
    /// Words of 64 bits needed for `bits` bits (no overflow for any count: a peer's chunk may
    /// claim a bitmap of 2^64 - 1 bits, found by the fuzzer).
    static func wordsToCover(_ bits: UInt64) -> UInt64 { bits / 64 + (bits % 64 == 0 ? 0 : 1) }

    /// The fixed part of the payload (for data frames, without the data itself).
    public static func encodeFixedPayload(_ frame: Frame) -> [UInt8] {
        var writer = ByteWriter(capacity: frame.type.fixedPayloadSize)
        writeFixedPayload(frame, to: &writer)
        return writer.bytes
    }

    /// Appends `frame`'s header (for `volume`, its data being `data` — ``dataBytes(_:)``, which
    /// the caller has — and `extraDataCount` bytes sent after it) and fixed payload to `bytes`,
    /// and the data too when `withData`, without a buffer of their own (a transport packs small
    /// frames into one send with it).
    package static func append(_ frame: Frame, volume: UInt16, data: [UInt8], extraDataCount: Int = 0, withData: Bool, to bytes: inout [UInt8]) {
        let header = FrameHeader(type: frame.type, volume: volume, length: UInt32(frame.type.fixedPayloadSize + data.count + extraDataCount))
        var writer = ByteWriter(adopting: &bytes)
        header.write(to: &writer)
        writeFixedPayload(frame, to: &writer)
        if withData { writer.bytes += data }
        swap(&bytes, &writer.bytes)
    }

    /// Appends the fixed part of `frame`'s payload to `w`.
    static func writeFixedPayload(_ frame: Frame, to w: inout ByteWriter) {
        switch frame {
        case .features(let p):
            w.put(p.protocolMin); w.put(p.protocolMax); w.put(p.featureFlags); w.put(p.nodeID)
        case .protocolParameters(let p):
            w.put(p.wireProtocol); w.put(p.afterSB0); w.put(p.afterSB1); w.put(p.afterSB2)
            w.put(p.connectionFlags); w.put(UInt8(p.allowTwoPrimaries ? 1 : 0)); w.put(UInt16(0))
            w.putString(p.integrityAlgorithm, size: FrameLimits.algorithmNameSize)
        case .syncParameters(let p):
            w.put(p.resyncRate); w.put(p.planAhead); w.put(p.delayTarget); w.put(p.fillTarget); w.put(p.maxRate)
            w.putString(p.verifyAlgorithm, size: FrameLimits.algorithmNameSize)
            w.putString(p.checksumAlgorithm, size: FrameLimits.algorithmNameSize)
        case .sizes(let p):
            w.put(p.backingSize); w.put(p.userSize); w.put(p.currentSize); w.put(p.maxRequestSize)
        case .uuids(let p):
            w.put(p.uuids.current); w.put(p.uuids.bitmap); w.put(p.uuids.historyStart); w.put(p.uuids.historyEnd)
            w.put(p.dirtyBits); w.put(p.flags)
        case .state(let value):
            w.put(value)
        case .stateChangeReply(let code):
            w.put(code)
        case .stateChangeRequest(let mask, let value):
            w.put(mask); w.put(value)
        case .data(let header, _):
            w.put(header.offset); w.put(header.blockID); w.put(header.sequence); w.put(header.flags)
        case .barrier(let epoch):
            w.put(epoch)
        case .barrierAck(let epoch, let setSize):
            w.put(epoch); w.put(setSize)
        case .receiveAck(let a), .writeAck(let a), .resyncWriteAck(let a), .negativeAck(let a), .negativeDataReply(let a), .negativeResyncReply(let a):
            w.put(a.offset); w.put(a.blockID); w.put(a.size); w.put(a.sequence)
        case .dataRequest(let r), .resyncRequest(let r):
            w.put(r.offset); w.put(r.blockID); w.put(r.size)
        case .dataReply(let offset, let blockID, _), .resyncReply(let offset, let blockID, _):
            w.put(offset); w.put(blockID)
        case .syncUUID(let uuid):
            w.put(uuid)
        case .bitmap(let chunk):
            w.put(chunk.firstBit); w.put(chunk.totalBits); w.put(UInt32(chunk.words.count))
        case .compressedBitmap(let chunk):
            w.put(chunk.firstBit); w.put(chunk.totalBits); w.put(UInt32(chunk.words.count))
            w.put(UInt8(chunk.words.first.map { $0 & 1 } ?? 0))
        case .outOfSync(let offset, let size):
            w.put(offset); w.put(size)
        case .ping, .pingAck, .initialData, .initialMeta, .disconnect, .authChallenge, .authResponse:
            break
        }
    }

    /// The data bytes a frame carries after its fixed payload.
    public static func dataBytes(_ frame: Frame) -> [UInt8] {
        switch frame {
        case .data(_, let bytes), .dataReply(_, _, let bytes), .resyncReply(_, _, let bytes): bytes
        case .bitmap(let chunk):
            chunk.words.flatMap { word in (0..<8).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
        case .compressedBitmap(let chunk):
            BitmapRunLength.encode(chunk.words[...], maximumBytes: Int.max).runs
        case .authChallenge(let bytes), .authResponse(let bytes): bytes
        default: []
        }
    }

    /// How many data bytes `frame` carries after its fixed payload (``dataBytes(_:)``'s
    /// count, without building them).
    public static func dataCount(_ frame: Frame) -> Int {
        switch frame {
        case .data(_, let bytes), .dataReply(_, _, let bytes), .resyncReply(_, _, let bytes): bytes.count
        case .bitmap(let chunk): chunk.words.count * 8
        case .compressedBitmap: dataBytes(frame).count
        case .authChallenge(let bytes), .authResponse(let bytes): bytes.count
        default: 0
        }
    }

    /// Header and complete payload of `frame` for `volume`, ready to send.
    public static func encode(_ frame: Frame, volume: UInt16 = 0) -> (header: [UInt8], payload: [UInt8]) {
        let payload = encodeFixedPayload(frame) + dataBytes(frame)
        return (FrameHeader(type: frame.type, volume: volume, length: UInt32(payload.count)).encoded(), payload)
    }

    /// Decodes a frame whose fixed payload and data were read separately (the data straight
    /// into its own buffer, so it is never copied). Same checks as ``decode(_:payload:)``.
    public static func decode(_ header: FrameHeader, fixed: [UInt8], data: [UInt8]) throws(ProtocolError) -> Frame {
        try decode(header, fixed: fixed, dataCount: data.count, data: data)
    }

    /// Decodes a frame whose data (`heldCount` bytes) was kept out of memory (``HeldData``):
    /// the frame comes with empty data, checked as ``decode(_:fixed:data:)`` checks it.
    public static func decode(_ header: FrameHeader, fixed: [UInt8], heldCount: Int) throws(ProtocolError) -> Frame {
        try decode(header, fixed: fixed, dataCount: heldCount, data: [])
    }

    private static func decode(_ header: FrameHeader, fixed: [UInt8], dataCount: Int, data: [UInt8]) throws(ProtocolError) -> Frame {
        let type = header.type
        guard fixed.count == type.fixedPayloadSize, fixed.count + dataCount == Int(header.length) else {
            throw ProtocolError("\(type) frame split into \(fixed.count) + \(dataCount) bytes, header announced \(header.length)")
        }
        switch type {
        case .data, .dataReply, .resyncReply:
            // Decode the fixed part with an empty data area, then attach the data.
            let shell = try decode(FrameHeader(type: type, volume: header.volume, length: UInt32(fixed.count)), payload: fixed)
            let sector = FrameLimits.sectorSize
            switch shell {
            case .data(let h, _):
                guard h.offset % UInt64(sector) == 0, dataCount % sector == 0 else {
                    throw ProtocolError("data at offset \(h.offset) of \(dataCount) bytes is not 512-byte aligned")
                }
                return .data(h, data)
            case .dataReply(let offset, let blockID, _):
                guard dataCount % sector == 0 else { throw ProtocolError("dataReply of \(dataCount) bytes is not 512-byte aligned") }
                return .dataReply(offset: offset, blockID: blockID, data)
            case .resyncReply(let offset, let blockID, _):
                guard dataCount % sector == 0 else { throw ProtocolError("resyncReply of \(dataCount) bytes is not 512-byte aligned") }
                return .resyncReply(offset: offset, blockID: blockID, data)
            default:
                throw ProtocolError("unexpected \(type)")
            }
        default:
            return try decode(header, payload: data.isEmpty ? fixed : fixed + data)
        }
    }

    /// Decodes a payload announced by `header`. Checks every length, alignment and value.
    public static func decode(_ header: FrameHeader, payload: [UInt8]) throws(ProtocolError) -> Frame {
        guard payload.count == Int(header.length) else {
            throw ProtocolError("\(header.type) payload of \(payload.count) bytes, header announced \(header.length)")
        }
        let fixed = header.type.fixedPayloadSize
        guard payload.count >= fixed, payload.count <= fixed + header.type.maximumDataSize else {
            throw ProtocolError("\(header.type) frame with \(payload.count) payload bytes (allowed \(fixed)...\(fixed + header.type.maximumDataSize))")
        }
        var r = ByteReader(payload)
        func aligned(_ offset: UInt64, _ size: Int, _ what: String) throws(ProtocolError) {
            let sector = UInt64(FrameLimits.sectorSize)
            guard offset % sector == 0, size % FrameLimits.sectorSize == 0 else {
                throw ProtocolError("\(what) at offset \(offset) of \(size) bytes is not 512-byte aligned")
            }
            guard offset <= UInt64(Int64.max) - UInt64(size) else { throw ProtocolError("\(what) offset \(offset) out of range") }
        }
        switch header.type {
        case .features:
            let p = FeaturesPayload(protocolMin: r.get(UInt32.self), protocolMax: r.get(UInt32.self), featureFlags: r.get(UInt32.self), nodeID: r.get(UInt32.self))
            return .features(p)
        case .protocolParameters:
            let wire = r.get(UInt8.self), sb0 = r.get(UInt8.self), sb1 = r.get(UInt8.self), sb2 = r.get(UInt8.self)
            let flags = r.get(UInt8.self), two = r.get(UInt8.self)
            _ = r.get(UInt16.self)
            guard (1...3).contains(wire) else { throw ProtocolError("protocol parameters: wire protocol \(wire) is not A, B or C") }
            guard two <= 1, flags & ~3 == 0 else { throw ProtocolError("protocol parameters: invalid flags") }
            let algorithm = try r.getString(size: FrameLimits.algorithmNameSize, field: "data-integrity-alg")
            return .protocolParameters(ProtocolParametersPayload(wireProtocol: wire, afterSB0: sb0, afterSB1: sb1, afterSB2: sb2,
                                                                 connectionFlags: flags, allowTwoPrimaries: two == 1, integrityAlgorithm: algorithm))
        case .syncParameters:
            let rate = r.get(UInt32.self), plan = r.get(UInt32.self), delay = r.get(UInt32.self), fill = r.get(UInt32.self), max = r.get(UInt32.self)
            let verify = try r.getString(size: FrameLimits.algorithmNameSize, field: "verify-alg")
            let csums = try r.getString(size: FrameLimits.algorithmNameSize, field: "csums-alg")
            return .syncParameters(SyncParametersPayload(resyncRate: rate, planAhead: plan, delayTarget: delay, fillTarget: fill, maxRate: max,
                                                         verifyAlgorithm: verify, checksumAlgorithm: csums))
        case .sizes:
            return .sizes(SizesPayload(backingSize: r.get(UInt64.self), userSize: r.get(UInt64.self), currentSize: r.get(UInt64.self), maxRequestSize: r.get(UInt32.self)))
        case .uuids:
            let uuids = GenerationUUIDs(current: r.get(UInt64.self), bitmap: r.get(UInt64.self), historyStart: r.get(UInt64.self), historyEnd: r.get(UInt64.self))
            return .uuids(UUIDsPayload(uuids: uuids, dirtyBits: r.get(UInt64.self), flags: r.get(UInt64.self)))
        case .state:
            let value = r.get(UInt32.self)
            guard ResourceState(wireValue: value) != nil else { throw ProtocolError("state 0x\(String(value, radix: 16)) holds an invalid role, connection or disk state") }
            return .state(value)
        case .stateChangeRequest:
            return .stateChangeRequest(mask: r.get(UInt32.self), value: r.get(UInt32.self))
        case .stateChangeReply:
            return .stateChangeReply(r.get(Int32.self))
        case .data:
            let h = DataHeader(offset: r.get(UInt64.self), blockID: r.get(UInt64.self), sequence: r.get(UInt32.self), flags: r.get(UInt32.self))
            guard h.flags & ~DataFlags.all == 0 else { throw ProtocolError("data frame with unknown flags 0x\(String(h.flags, radix: 16))") }
            let data = r.remaining
            try aligned(h.offset, data.count, "data")
            return .data(h, data)
        case .barrier:
            return .barrier(epoch: r.get(UInt32.self))
        case .barrierAck:
            return .barrierAck(epoch: r.get(UInt32.self), setSize: r.get(UInt32.self))
        case .receiveAck, .writeAck, .resyncWriteAck, .negativeAck, .negativeDataReply, .negativeResyncReply:
            let a = BlockAck(offset: r.get(UInt64.self), blockID: r.get(UInt64.self), size: r.get(UInt32.self), sequence: r.get(UInt32.self))
            guard a.size <= FrameLimits.maximumRequestSize else { throw ProtocolError("\(header.type) for \(a.size) bytes, more than 1 MiB") }
            // An acknowledged range is a range of the disk: it must fit a signed 64-bit offset
            // (found by the fuzzer: an ack at 2^64 - 512 trapped the engine).
            guard a.offset <= UInt64(Int64.max) - UInt64(a.size) else { throw ProtocolError("\(header.type) offset \(a.offset) out of range") }
            switch header.type {
            case .receiveAck: return .receiveAck(a)
            case .writeAck: return .writeAck(a)
            case .resyncWriteAck: return .resyncWriteAck(a)
            case .negativeAck: return .negativeAck(a)
            case .negativeDataReply: return .negativeDataReply(a)
            default: return .negativeResyncReply(a)
            }
        case .dataRequest, .resyncRequest:
            let q = BlockRequest(offset: r.get(UInt64.self), blockID: r.get(UInt64.self), size: r.get(UInt32.self))
            guard q.size > 0, q.size <= FrameLimits.maximumRequestSize else { throw ProtocolError("\(header.type) for \(q.size) bytes (allowed 512 bytes to 1 MiB)") }
            try aligned(q.offset, Int(q.size), "\(header.type)")
            return header.type == .dataRequest ? .dataRequest(q) : .resyncRequest(q)
        case .dataReply, .resyncReply:
            let offset = r.get(UInt64.self), blockID = r.get(UInt64.self)
            let data = r.remaining
            try aligned(offset, data.count, "\(header.type)")
            return header.type == .dataReply ? .dataReply(offset: offset, blockID: blockID, data) : .resyncReply(offset: offset, blockID: blockID, data)
        case .syncUUID:
            return .syncUUID(r.get(UInt64.self))
        case .bitmap:
            let first = r.get(UInt64.self), total = r.get(UInt64.self), count = Int(r.get(UInt32.self))
            guard payload.count == fixed + count * 8 else { throw ProtocolError("bitmap chunk announces \(count) words but carries \(payload.count - fixed) bytes") }
            guard first % 64 == 0, first <= total, UInt64(count) <= wordsToCover(total - first) else {
                throw ProtocolError("bitmap chunk at bit \(first) with \(count) words does not fit a bitmap of \(total) bits")
            }
            let words = (0..<count).map { i in (0..<8).reduce(UInt64(0)) { $0 | UInt64(payload[fixed + i * 8 + $1]) << (8 * $1) } }
            return .bitmap(BitmapChunk(firstBit: first, totalBits: total, words: words))
        case .compressedBitmap:
            let first = r.get(UInt64.self), total = r.get(UInt64.self), count = Int(r.get(UInt32.self))
            let firstValue = r.get(UInt8.self)
            guard firstValue <= 1 else { throw ProtocolError("compressed bitmap chunk with first value \(firstValue) (0 or 1)") }
            guard first % 64 == 0, first <= total, count > 0, UInt64(count) <= wordsToCover(total - first) else {
                throw ProtocolError("compressed bitmap chunk at bit \(first) with \(count) words does not fit a bitmap of \(total) bits")
            }
            let words = try BitmapRunLength.decode(firstValue: firstValue == 1, runs: r.remaining, wordCount: count)
            return .compressedBitmap(BitmapChunk(firstBit: first, totalBits: total, words: words))
        case .outOfSync:
            let offset = r.get(UInt64.self), size = r.get(UInt32.self)
            try aligned(offset, Int(size), "out-of-sync range")
            return .outOfSync(offset: offset, size: size)
        case .ping: return .ping
        case .pingAck: return .pingAck
        case .initialData: return .initialData
        case .initialMeta: return .initialMeta
        case .disconnect: return .disconnect
        case .authChallenge: return .authChallenge(r.remaining)
        case .authResponse: return .authResponse(r.remaining)
        }
    }
}
