/// Where the superblock, activity log and bitmap of a volume lie, computed as `drbdmeta`
/// computes them for the v08 format (reference 4.1).
public struct MetadataLayout: Sendable, Equatable {
    /// Sector size of offsets in the superblock.
    public static let sectorSize: Int64 = 512
    /// Size of the superblock.
    public static let superblockSize: Int64 = 4096
    /// Size of one fixed external meta-data slot (`meta-disk PATH [N]`).
    public static let indexedSlotSize: Int64 = 128 << 20

    /// How the meta-data is placed.
    public enum Placement: Sendable, Equatable {
        /// At the end of the data device.
        case `internal`
        /// At the start of a separate device (flexible external).
        case external
        /// In slot `index` of 128 MiB on a separate device.
        case indexed(Int)
    }

    /// The placement.
    public var placement: Placement
    /// Byte offset of the superblock on the meta-data device.
    public var superblockOffset: Int64
    /// Total meta-data size in sectors (`md_size_sect`).
    public var sizeSectors: Int64
    /// Activity log offset relative to the superblock, in sectors (may be negative).
    public var activityLogOffsetSectors: Int64
    /// Bitmap offset relative to the superblock, in sectors (may be negative).
    public var bitmapOffsetSectors: Int64
    /// Number of AL stripes.
    public var activityLogStripes: Int
    /// Size of one AL stripe in 4 KiB blocks.
    public var activityLogStripeSize4k: Int
    /// Bytes of data that the volume exposes (for internal meta-data: what lies before the bitmap).
    public var usableDataBytes: Int64
    /// Bytes reserved for the bitmap on disk.
    public var bitmapBytes: Int64

    /// Absolute byte offset of the activity log.
    public var activityLogOffset: Int64 { superblockOffset + activityLogOffsetSectors * Self.sectorSize }
    /// Absolute byte offset of the bitmap.
    public var bitmapOffset: Int64 { superblockOffset + bitmapOffsetSectors * Self.sectorSize }
    /// Number of 4 KiB blocks in the activity log ring.
    public var activityLogBlocks: Int { activityLogStripes * activityLogStripeSize4k }

    /// Bitmap bytes for a device of `sectors` sectors: one bit per 4 KiB, in 64-bit words,
    /// rounded up to 4 KiB.
    public static func bitmapBytes(forSectors sectors: Int64) -> Int64 {
        let bits = (sectors + 7) / 8
        let words = (bits + 63) / 64
        return (words * 8 + 4095) / 4096 * 4096
    }

    /// Errors computing a layout.
    public enum LayoutError: Error, Equatable, CustomStringConvertible {
        /// The device cannot hold the meta-data and at least one 4 KiB block of data.
        case deviceTooSmall(deviceBytes: Int64, metadataBytes: Int64)
        /// An indexed slot of 128 MiB cannot hold the bitmap of the data device.
        case dataDeviceTooLargeForSlot(dataBytes: Int64, maximumBytes: Int64)
        /// The meta-data device is shorter than the area it must hold.
        case metadataDeviceTooSmall(deviceBytes: Int64, neededBytes: Int64)
        /// The activity-log geometry is not valid.
        case invalidActivityLog(String)

        public var description: String {
            switch self {
            case .deviceTooSmall(let device, let metadata):
                "device too small: \(device) bytes, but internal meta-data alone needs \(metadata) bytes plus at least 4096 bytes of data"
            case .dataDeviceTooLargeForSlot(let data, let maximum):
                "data device of \(data) bytes is too large for a 128 MiB indexed meta-data slot (at most \(maximum) bytes)"
            case .metadataDeviceTooSmall(let device, let needed):
                "meta-data device too small: \(device) bytes, needs \(needed) bytes"
            case .invalidActivityLog(let why):
                "invalid activity log geometry: \(why)"
            }
        }
    }

    static func checkStripes(_ stripes: Int, _ stripeSize4k: Int) throws(LayoutError) {
        guard stripes >= 1, stripeSize4k >= 1 else { throw .invalidActivityLog("stripes and stripe size must be at least 1") }
        let total = stripes * stripeSize4k
        guard total >= 8, total * 4096 <= 1 << 30 else {
            throw .invalidActivityLog("\(stripes) x \(stripeSize4k * 4) KiB is outside 32 KiB..1 GiB")
        }
    }

    /// Layout of internal meta-data at the end of a device of `deviceBytes` bytes.
    public static func internalLayout(deviceBytes: Int64, alStripes: Int = 1, alStripeSize4k: Int = 8) throws(LayoutError) -> MetadataLayout {
        try checkStripes(alStripes, alStripeSize4k)
        let alSectors = Int64(alStripes * alStripeSize4k * 8)
        let bitmap = bitmapBytes(forSectors: deviceBytes / sectorSize)
        let mdSectors = (bitmap / sectorSize + 7) / 8 * 8 + 8 + alSectors
        guard deviceBytes >= superblockSize else {
            throw .deviceTooSmall(deviceBytes: deviceBytes, metadataBytes: mdSectors * sectorSize)
        }
        let mdOffset = (deviceBytes - superblockSize) / 4096 * 4096
        let bmOffset = -mdSectors + 8
        let usable = mdOffset + bmOffset * sectorSize
        guard usable >= 4096 else {
            throw .deviceTooSmall(deviceBytes: deviceBytes, metadataBytes: mdSectors * sectorSize)
        }
        return MetadataLayout(
            placement: .internal, superblockOffset: mdOffset, sizeSectors: mdSectors,
            activityLogOffsetSectors: -alSectors, bitmapOffsetSectors: bmOffset,
            activityLogStripes: alStripes, activityLogStripeSize4k: alStripeSize4k,
            usableDataBytes: usable, bitmapBytes: bitmap)
    }

    /// Layout of flexible external meta-data (`meta-disk PATH`) for a data device of `dataBytes`.
    public static func externalLayout(dataBytes: Int64, metadataDeviceBytes: Int64, alStripes: Int = 1, alStripeSize4k: Int = 8) throws(LayoutError) -> MetadataLayout {
        try checkStripes(alStripes, alStripeSize4k)
        let alSectors = Int64(alStripes * alStripeSize4k * 8)
        let bitmap = bitmapBytes(forSectors: dataBytes / sectorSize)
        let needed = (bitmap / sectorSize + 7) / 8 * 8 + 8 + alSectors
        // drbdmeta gives flexible external meta-data the whole meta-data device.
        let mdSectors = metadataDeviceBytes / sectorSize / 8 * 8
        guard mdSectors >= needed else {
            throw .metadataDeviceTooSmall(deviceBytes: metadataDeviceBytes, neededBytes: needed * sectorSize)
        }
        return MetadataLayout(
            placement: .external, superblockOffset: 0, sizeSectors: mdSectors,
            activityLogOffsetSectors: 8, bitmapOffsetSectors: 8 + alSectors,
            activityLogStripes: alStripes, activityLogStripeSize4k: alStripeSize4k,
            usableDataBytes: dataBytes, bitmapBytes: bitmap)
    }

    /// Layout of indexed external meta-data (`meta-disk PATH [index]`): a fixed 128 MiB slot.
    public static func indexedLayout(dataBytes: Int64, metadataDeviceBytes: Int64, index: Int) throws(LayoutError) -> MetadataLayout {
        let alSectors: Int64 = 64
        let mdSectors = indexedSlotSize / sectorSize
        let maxBitmap = indexedSlotSize - superblockSize - alSectors * sectorSize
        let maximumData = maxBitmap * 8 * 4096
        let usable = min(dataBytes, maximumData)
        let bitmap = bitmapBytes(forSectors: usable / sectorSize)
        let offset = Int64(index) * indexedSlotSize
        guard metadataDeviceBytes >= offset + indexedSlotSize else {
            throw .metadataDeviceTooSmall(deviceBytes: metadataDeviceBytes, neededBytes: offset + indexedSlotSize)
        }
        return MetadataLayout(
            placement: .indexed(index), superblockOffset: offset, sizeSectors: mdSectors,
            activityLogOffsetSectors: 8, bitmapOffsetSectors: 8 + alSectors,
            activityLogStripes: 1, activityLogStripeSize4k: 8,
            usableDataBytes: usable, bitmapBytes: bitmap)
    }
}
