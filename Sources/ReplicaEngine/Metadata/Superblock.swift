/// The 4096-byte v08 meta-data superblock of DRBD 8.x, big-endian (reference 4.2).
public struct Superblock: Sendable, Equatable {
    /// `DRBD_MAGIC + 4`: v08, clean.
    public static let magicV08: UInt32 = 0x8374_026B
    /// `DRBD_MAGIC + 5`: v08 written by an attached 8.4 kernel (needs `apply-al` after a crash).
    public static let magicV08Unclean: UInt32 = 0x8374_026C
    /// `DRBD_MAGIC + 3`: v07.
    public static let magicV07: UInt32 = 0x8374_026A
    /// `DRBD_MAGIC + 6`: v09.
    public static let magicV09: UInt32 = 0x8374_026D
    /// Size on disk.
    public static let size = 4096

    /// Last agreed size of the replicated device, in sectors.
    public var lastAgreedSizeSectors: UInt64 = 0
    /// The generation UUIDs (current, bitmap, history start, history end).
    public var uuids = GenerationUUIDs.justCreated
    /// Random id of this backing device (informational).
    public var deviceUUID: UInt64 = 0
    /// `MDF_*` flags.
    public var flags: MetadataFlags = .activityLogClean
    /// Magic: clean or unclean v08.
    public var magic: UInt32 = magicV08
    /// Meta-data size in sectors.
    public var sizeSectors: UInt32
    /// Activity log offset relative to the superblock, sectors.
    public var activityLogOffsetSectors: Int32
    /// Number of AL extents in use (`al-extents`), needed to replay the AL.
    public var activityLogExtents: UInt32
    /// Bitmap offset relative to the superblock, sectors.
    public var bitmapOffsetSectors: Int32
    /// Bytes of data per bitmap bit (4096).
    public var bitmapBytesPerBit: UInt32 = 4096
    /// Largest request size agreed with the peer, bytes.
    public var lastAgreedPeerMaxBioSize: UInt32 = 0
    /// AL stripes.
    public var activityLogStripes: UInt32 = 1
    /// AL stripe size in 4 KiB blocks.
    public var activityLogStripeSize4k: UInt32 = 8

    /// A fresh superblock for `layout`, as `create-md` writes it.
    public init(layout: MetadataLayout, activityLogExtents: Int = 257) {
        sizeSectors = UInt32(layout.sizeSectors)
        activityLogOffsetSectors = Int32(layout.activityLogOffsetSectors)
        bitmapOffsetSectors = Int32(layout.bitmapOffsetSectors)
        self.activityLogExtents = UInt32(activityLogExtents)
        activityLogStripes = UInt32(layout.activityLogStripes)
        activityLogStripeSize4k = UInt32(layout.activityLogStripeSize4k)
    }

    /// Problems found decoding a superblock.
    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        /// Fewer than 4096 bytes.
        case truncated(Int)
        /// The magic is not a v08 one; `found` says what it is.
        case badMagic(UInt32, found: String)
        /// A field has an impossible value.
        case invalidField(String)

        public var description: String {
            switch self {
            case .truncated(let count): "superblock truncated: \(count) of 4096 bytes"
            case .badMagic(let magic, let found):
                "bad magic 0x\(String(magic, radix: 16, uppercase: true)) at offset 0x3C of the superblock: \(found)"
            case .invalidField(let why): "invalid superblock: \(why)"
            }
        }
    }

    /// Decodes a superblock from its 4096 bytes.
    public init(bytes: [UInt8]) throws(DecodeError) {
        guard bytes.count >= Self.size else { throw .truncated(bytes.count) }
        let magic = bytes.readBE(UInt32.self, at: 0x3C)
        switch magic {
        case Self.magicV08, Self.magicV08Unclean: break
        case Self.magicV07: throw .badMagic(magic, found: "v07 meta-data (not supported)")
        case Self.magicV09: throw .badMagic(magic, found: "v09 meta-data (DRBD 9); Replica reads v08")
        case 0: throw .badMagic(magic, found: "no meta-data (zeroes)")
        default: throw .badMagic(magic, found: "not DRBD meta-data")
        }
        self.magic = magic
        lastAgreedSizeSectors = bytes.readBE(UInt64.self, at: 0x00)
        uuids = GenerationUUIDs(
            current: bytes.readBE(UInt64.self, at: 0x08), bitmap: bytes.readBE(UInt64.self, at: 0x10),
            historyStart: bytes.readBE(UInt64.self, at: 0x18), historyEnd: bytes.readBE(UInt64.self, at: 0x20))
        deviceUUID = bytes.readBE(UInt64.self, at: 0x28)
        flags = MetadataFlags(rawValue: bytes.readBE(UInt32.self, at: 0x38))
        sizeSectors = bytes.readBE(UInt32.self, at: 0x40)
        activityLogOffsetSectors = bytes.readBE(Int32.self, at: 0x44)
        activityLogExtents = bytes.readBE(UInt32.self, at: 0x48)
        bitmapOffsetSectors = bytes.readBE(Int32.self, at: 0x4C)
        bitmapBytesPerBit = bytes.readBE(UInt32.self, at: 0x50)
        lastAgreedPeerMaxBioSize = bytes.readBE(UInt32.self, at: 0x54)
        activityLogStripes = bytes.readBE(UInt32.self, at: 0x58)
        activityLogStripeSize4k = bytes.readBE(UInt32.self, at: 0x5C)
        if activityLogStripes == 0, activityLogStripeSize4k == 0 {
            activityLogStripes = 1  // written by tools older than 8.4
            activityLogStripeSize4k = 8
        }
        guard bitmapBytesPerBit == 4096 else {
            throw .invalidField("bm_bytes_per_bit is \(bitmapBytesPerBit) at offset 0x50, only 4096 is supported")
        }
        guard activityLogStripes >= 1, activityLogStripeSize4k >= 1, UInt64(activityLogStripes) * UInt64(activityLogStripeSize4k) <= 1 << 18 else {
            throw .invalidField("activity log of \(activityLogStripes) stripes x \(activityLogStripeSize4k) blocks (offset 0x58)")
        }
        guard sizeSectors >= 8 + activityLogStripes * activityLogStripeSize4k * 8 else {
            throw .invalidField("md_size_sect \(sizeSectors) (offset 0x40) is smaller than superblock plus activity log")
        }
    }

    /// The 4096 bytes of this superblock.
    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.writeBE(lastAgreedSizeSectors, at: 0x00)
        bytes.writeBE(uuids.current, at: 0x08)
        bytes.writeBE(uuids.bitmap, at: 0x10)
        bytes.writeBE(uuids.historyStart, at: 0x18)
        bytes.writeBE(uuids.historyEnd, at: 0x20)
        bytes.writeBE(deviceUUID, at: 0x28)
        bytes.writeBE(flags.rawValue, at: 0x38)
        bytes.writeBE(magic, at: 0x3C)
        bytes.writeBE(sizeSectors, at: 0x40)
        bytes.writeBE(activityLogOffsetSectors, at: 0x44)
        bytes.writeBE(activityLogExtents, at: 0x48)
        bytes.writeBE(bitmapOffsetSectors, at: 0x4C)
        bytes.writeBE(bitmapBytesPerBit, at: 0x50)
        bytes.writeBE(lastAgreedPeerMaxBioSize, at: 0x54)
        bytes.writeBE(activityLogStripes, at: 0x58)
        bytes.writeBE(activityLogStripeSize4k, at: 0x5C)
        return bytes
    }

    /// True when the superblock was written clean (no AL replay needed by the magic).
    public var isCleanMagic: Bool { magic == Self.magicV08 }
}
