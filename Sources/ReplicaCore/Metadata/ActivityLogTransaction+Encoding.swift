/// The on-disk form of an activity-log transaction (reference 4.5): 4096 bytes, big-endian,
/// with a CRC32C over the block (computed with the CPU's instruction where there is one).
extension ActivityLogTransaction {
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
        let number = bytes.readBE(UInt32.self, at: 4)
        let type = bytes.readBE(UInt16.self, at: 12)
        let count = Int(bytes.readBE(UInt16.self, at: 14))
        let contextSize = bytes.readBE(UInt16.self, at: 16)
        let contextStartSlot = bytes.readBE(UInt16.self, at: 18)
        guard count <= Self.updatesPerTransaction else { throw .invalidField("n_updates \(count) > 64 at offset 14") }
        let updates = (0..<count).map { (slot: bytes.readBE(UInt16.self, at: 36 + $0 * 2), extent: bytes.readBE(UInt32.self, at: 164 + $0 * 4)) }
        let context = type == Self.typeInitialized ? [] : (0..<Self.contextPerTransaction).map { bytes.readBE(UInt32.self, at: 420 + $0 * 4) }
        self.init(number: number, type: type, contextSize: contextSize, contextStartSlot: contextStartSlot, updates: updates, context: context)
    }

}
