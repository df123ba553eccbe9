/// One 4096-byte activity-log transaction block (`struct al_transaction_on_disk`, reference 4.5).
public struct ActivityLogTransaction: Sendable, Equatable {
    /// AL block magic.
    public static let magic: UInt32 = 0x69CB_65A2
    /// `AL_TR_UPDATE`.
    public static let typeUpdate: UInt16 = 0
    /// `AL_TR_INITIALIZED`, written by create-md.
    public static let typeInitialized: UInt16 = 0xFFFF
    /// Slot changes per transaction.
    public static let updatesPerTransaction = 64
    /// Context slots per transaction.
    public static let contextPerTransaction = 919
    /// A free slot / unused extent.
    public static let freeExtent: UInt32 = 0xFFFF_FFFF
    /// An unused update slot number.
    public static let unusedSlot: UInt16 = 0xFFFF
    /// Block size.
    public static let size = 4096

    /// Monotonic transaction number.
    public var number: UInt32
    /// `typeUpdate` or `typeInitialized`.
    public var type: UInt16
    /// Number of AL slots (`al-extents`).
    public var contextSize: UInt16
    /// The first slot the context window describes.
    public var contextStartSlot: UInt16
    /// The slot changes: (slot, extent).
    public var updates: [(slot: UInt16, extent: UInt32)]
    /// Extent numbers of slots `contextStartSlot ..< contextStartSlot + 919`.
    public var context: [UInt32]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.number == rhs.number && lhs.type == rhs.type && lhs.contextSize == rhs.contextSize
            && lhs.contextStartSlot == rhs.contextStartSlot && lhs.context == rhs.context
            && lhs.updates.map(\.slot) == rhs.updates.map(\.slot) && lhs.updates.map(\.extent) == rhs.updates.map(\.extent)
    }

    /// Creates a transaction.
    public init(number: UInt32, type: UInt16 = typeUpdate, contextSize: UInt16, contextStartSlot: UInt16,
                updates: [(slot: UInt16, extent: UInt32)], context: [UInt32]) {
        precondition(updates.count <= Self.updatesPerTransaction, "too many updates in one AL transaction")
        precondition(context.count <= Self.contextPerTransaction, "context window too large")
        self.number = number
        self.type = type
        self.contextSize = contextSize
        self.contextStartSlot = contextStartSlot
        self.updates = updates
        self.context = context
    }

    /// The block create-md writes into every AL slot.
    public static let initialized = ActivityLogTransaction(
        number: 0, type: typeInitialized, contextSize: 0, contextStartSlot: 0, updates: [], context: [])

    /// The 4096 bytes, with the CRC32C computed.
    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.writeBE(Self.magic, at: 0)
        bytes.writeBE(number, at: 4)
        bytes.writeBE(type, at: 12)
        bytes.writeBE(UInt16(updates.count), at: 14)
        bytes.writeBE(contextSize, at: 16)
        bytes.writeBE(contextStartSlot, at: 18)
        if type != Self.typeInitialized {
            for index in 0..<Self.updatesPerTransaction {
                let update = index < updates.count ? updates[index] : (Self.unusedSlot, Self.freeExtent)
                bytes.writeBE(update.0, at: 36 + index * 2)
                bytes.writeBE(update.1, at: 164 + index * 4)
            }
            for index in 0..<Self.contextPerTransaction {
                bytes.writeBE(index < context.count ? context[index] : Self.freeExtent, at: 420 + index * 4)
            }
        }
        bytes.writeBE(CRC32C.checksum(bytes), at: 8)
        return bytes
    }

    /// Why a block is not a valid transaction.
    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        /// Not an AL block at all.
        case badMagic(UInt32)
        /// The checksum does not match: a torn or damaged write.
        case badChecksum(stored: UInt32, computed: UInt32)
        /// A count field is out of range.
        case invalidField(String)

        public var description: String {
            switch self {
            case .badMagic(let magic): "bad magic 0x\(String(magic, radix: 16)) (expected 0x69cb65a2)"
            case .badChecksum(let stored, let computed):
                "bad CRC32C 0x\(String(stored, radix: 16)) (computed 0x\(String(computed, radix: 16))): torn or damaged transaction"
            case .invalidField(let why): why
            }
        }
    }

    /// Decodes and verifies a block.
    public init(bytes: [UInt8]) throws(DecodeError) {
        precondition(bytes.count == Self.size, "AL blocks are 4096 bytes")
        let magic = bytes.readBE(UInt32.self, at: 0)
        guard magic == Self.magic else { throw .badMagic(magic) }
        let stored = bytes.readBE(UInt32.self, at: 8)
        var zeroed = bytes
        zeroed.writeBE(UInt32(0), at: 8)
        let computed = CRC32C.checksum(zeroed)
        guard stored == computed else { throw .badChecksum(stored: stored, computed: computed) }
        number = bytes.readBE(UInt32.self, at: 4)
        type = bytes.readBE(UInt16.self, at: 12)
        let count = Int(bytes.readBE(UInt16.self, at: 14))
        contextSize = bytes.readBE(UInt16.self, at: 16)
        contextStartSlot = bytes.readBE(UInt16.self, at: 18)
        guard count <= Self.updatesPerTransaction else { throw .invalidField("n_updates \(count) > 64 at offset 14") }
        updates = (0..<count).map { (bytes.readBE(UInt16.self, at: 36 + $0 * 2), bytes.readBE(UInt32.self, at: 164 + $0 * 4)) }
        context = type == Self.typeInitialized ? [] : (0..<Self.contextPerTransaction).map { bytes.readBE(UInt32.self, at: 420 + $0 * 4) }
    }

    /// The block index of transaction `number` in a ring of `stripes` × `stripeSize4k` blocks
    /// (`al_tr_number_to_on_disk_sector`).
    public static func blockIndex(of number: UInt32, stripes: Int, stripeSize4k: Int) -> Int {
        let ring = UInt32(stripes * stripeSize4k)
        let t = Int(number % ring)
        return (t % stripes) * stripeSize4k + t / stripes
    }
}
