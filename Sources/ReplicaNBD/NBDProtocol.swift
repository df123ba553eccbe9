/// Constants of the NBD protocol (fixed newstyle handshake, transmission phase), from the
/// protocol document (`NetworkBlockDevice/nbd doc/proto.md`; summary in the project's
/// reference `peers.md` section 3). All integers on the wire are big-endian.
public enum NBDProtocol {
    /// `NBDMAGIC`, first 8 bytes the server sends.
    public static let initialMagic: UInt64 = 0x4E42_444D_4147_4943
    /// `IHAVEOPT`, the newstyle magic (and the prefix of every option).
    public static let optionMagic: UInt64 = 0x4948_4156_454F_5054
    /// Magic of option replies.
    public static let replyMagic: UInt64 = 0x0003_E889_0455_65A9
    /// Magic of transmission requests.
    public static let requestMagic: UInt32 = 0x2560_9513
    /// Magic of simple replies.
    public static let simpleReplyMagic: UInt32 = 0x6744_6698
    /// Magic of structured reply chunks.
    public static let structuredReplyMagic: UInt32 = 0x668E_33EF

    /// Server handshake flags: FIXED_NEWSTYLE (bit 0), NO_ZEROES (bit 1).
    public static let handshakeFlags: UInt16 = 0b11
    /// Client flags the server understands: C_FIXED_NEWSTYLE, C_NO_ZEROES.
    public static let knownClientFlags: UInt32 = 0b11
    /// Client flag: no 124 zero bytes after EXPORT_NAME.
    public static let clientNoZeroes: UInt32 = 0b10

    /// Largest option payload the server reads (names are at most 4 KiB by the spec).
    public static let maximumOptionLength: UInt32 = 16 * 1024
    /// Largest READ or WRITE payload (the spec's customary maximum, 32 MiB).
    public static let maximumPayload = 32 << 20
    /// Size alignment of requests: the replicated engine works in 512-byte sectors.
    public static let minimumBlockSize = 512
    /// Preferred request size.
    public static let preferredBlockSize = 4096

    /// Handshake options.
    public enum Option: UInt32, Sendable {
        case exportName = 1, abort = 2, list = 3, startTLS = 5, info = 6, go = 7, structuredReply = 8
        case listMetaContext = 9, setMetaContext = 10
    }

    /// Option reply types.
    public enum Reply: UInt32, Sendable {
        case ack = 1, server = 2, info = 3, metaContext = 4
        case errorUnsupported = 0x8000_0001, errorPolicy = 0x8000_0002, errorInvalid = 0x8000_0003
        case errorUnknown = 0x8000_0006, errorTooBig = 0x8000_0009
        case errorTLSRequired = 0x8000_0005
    }

    /// Information types of `NBD_REP_INFO`.
    public enum Info: UInt16, Sendable {
        case export = 0, name = 1, description = 2, blockSize = 3
    }

    /// Transmission flags (16 bits).
    public enum TransmissionFlag {
        public static let hasFlags: UInt16 = 1 << 0
        public static let readOnly: UInt16 = 1 << 1
        public static let sendFlush: UInt16 = 1 << 2
        public static let sendFUA: UInt16 = 1 << 3
        public static let sendTrim: UInt16 = 1 << 5
        public static let sendWriteZeroes: UInt16 = 1 << 6
        public static let canMultiConnection: UInt16 = 1 << 8
        public static let sendFastZero: UInt16 = 1 << 11
    }

    /// Command flags.
    public enum CommandFlag {
        public static let fua: UInt16 = 1 << 0
        public static let noHole: UInt16 = 1 << 1
        /// BLOCK_STATUS: one descriptor is enough.
        public static let requestOne: UInt16 = 1 << 3
        public static let fastZero: UInt16 = 1 << 4
    }

    /// The one metadata context Replica serves: holes and zeroes of the export.
    public enum BaseAllocation {
        /// Its name, in `NBD_OPT_{LIST,SET}_META_CONTEXT` and `nbdinfo --map`.
        public static let name = "base:allocation"
        /// The id this server gives it in `NBD_REP_META_CONTEXT` and block status replies.
        public static let contextID: UInt32 = 1
        /// Status flag: the range is a hole (no storage behind it).
        public static let hole: UInt32 = 1 << 0
        /// Status flag: the range reads back as zeroes.
        public static let zero: UInt32 = 1 << 1
    }

    /// Transmission commands.
    public enum Command: UInt16, Sendable {
        case read = 0, write = 1, disconnect = 2, flush = 3, trim = 4, cache = 5, writeZeroes = 6, blockStatus = 7
    }

    /// Structured reply chunk types.
    public enum ChunkType {
        /// No content: the final chunk of a reply with nothing (more) to say.
        public static let none: UInt16 = 0
        public static let offsetData: UInt16 = 1
        /// Block status descriptors of one metadata context.
        public static let blockStatus: UInt16 = 5
        public static let error: UInt16 = 0x8001
        /// Chunk flag: the last chunk of the reply.
        public static let done: UInt16 = 1
    }

    /// Error numbers of replies (Linux values, as the spec fixes them).
    public enum Errno {
        public static let eperm: UInt32 = 1
        public static let eio: UInt32 = 5
        public static let einval: UInt32 = 22
        public static let enospc: UInt32 = 28
        public static let enotsup: UInt32 = 95
        public static let eshutdown: UInt32 = 108
    }
}

/// The fixed 28-byte header of an NBD transmission request.
public struct NBDRequestHeader: Sendable, Equatable {
    /// Command flags (FUA = 1, NO_HOLE = 2, ...).
    public var flags: UInt16
    /// The command number, as sent.
    public var type: UInt16
    /// The client's handle, echoed in the reply.
    public var cookie: UInt64
    /// Byte offset.
    public var offset: UInt64
    /// Byte length.
    public var length: UInt32

    /// Size of the header on the wire.
    public static let size = 28

    /// Errors decoding a request header.
    public enum DecodeError: Error, Equatable {
        /// Fewer than 28 bytes.
        case truncated(Int)
        /// The magic is not 0x25609513.
        case badMagic(UInt32)
    }

    /// Decodes a header from 28 big-endian bytes.
    public init(bytes: some Collection<UInt8>) throws(DecodeError) {
        let b = Array(bytes)
        guard b.count >= Self.size else { throw .truncated(b.count) }
        func be(_ at: Int, _ n: Int) -> UInt64 { b[at..<at + n].reduce(0) { $0 << 8 | UInt64($1) } }
        let magic = UInt32(be(0, 4))
        guard magic == NBDProtocol.requestMagic else { throw .badMagic(magic) }
        flags = UInt16(be(4, 2))
        type = UInt16(be(6, 2))
        cookie = be(8, 8)
        offset = be(16, 8)
        length = UInt32(be(24, 4))
    }

    /// The command, or nil for an unknown command number.
    public var command: NBDProtocol.Command? { NBDProtocol.Command(rawValue: type) }
}

/// Big-endian encoding helpers for replies.
struct BigEndianWriter {
    var bytes: [UInt8] = []
    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func put(_ data: [UInt8]) { bytes.append(contentsOf: data) }

    /// The header of a structured reply's last chunk: magic, DONE, `type`, `cookie`, and the
    /// `length` of the payload that follows.
    mutating func putFinalChunk(_ type: UInt16, cookie: UInt64, length: Int) {
        put(NBDProtocol.structuredReplyMagic)
        put(NBDProtocol.ChunkType.done)
        put(type)
        put(cookie)
        put(UInt32(length))
    }
}
