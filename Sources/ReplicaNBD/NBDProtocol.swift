/// Constants of the NBD protocol (newstyle fixed handshake, transmission phase),
/// from the protocol document (`../shared/reference/peers.md` section 3).
public enum NBDProtocol {
    /// `NBDMAGIC`, first 8 bytes the server sends.
    public static let initialMagic: UInt64 = 0x4E42_444D_4147_4943
    /// `IHAVEOPT`, the newstyle magic.
    public static let optionMagic: UInt64 = 0x4948_4156_454F_5054
    /// Magic of option replies.
    public static let replyMagic: UInt64 = 0x0003_E889_0455_65A9
    /// Magic of transmission requests.
    public static let requestMagic: UInt32 = 0x2560_9513
    /// Magic of simple replies.
    public static let simpleReplyMagic: UInt32 = 0x6744_6698

    /// Transmission commands.
    public enum Command: UInt16, Sendable {
        case read = 0, write = 1, disconnect = 2, flush = 3, trim = 4, cache = 5, writeZeroes = 6, blockStatus = 7
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
