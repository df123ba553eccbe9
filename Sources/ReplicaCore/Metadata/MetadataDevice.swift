/// A problem with on-disk meta-data: what is wrong and where (device and byte offset).
public struct MetadataError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message.
    public var description: String
    /// The failed disk operation behind it, when there was one.
    public var cause: BlockIOError?

    /// Creates an error.
    public init(_ description: String, cause: BlockIOError? = nil) {
        self.description = description
        self.cause = cause
    }

    /// The failure as a disk operation (its cause, with this message as the detail), for the
    /// engine's ``EngineEvent/metadataWriteFailed(_:_:)``.
    public var asBlockIOError: BlockIOError {
        var error = cause ?? BlockIOError(operation: .write, offset: 0, length: 0, errno: 5)
        error.detail = description
        return error
    }
}

/// The meta-data area of one volume on its device: reads and writes the superblock, the
/// bitmap and the activity log at the places the ``MetadataLayout`` gives.
public struct MetadataDevice: Sendable {
    /// The device holding the meta-data (the data device itself for internal meta-data).
    public let target: any BlockTarget
    /// Where the areas lie.
    public let layout: MetadataLayout
    /// A name for messages (the device path).
    public let name: String

    /// Meta-data at a layout on a target.
    public init(target: any BlockTarget, layout: MetadataLayout, name: String) {
        self.target = target
        self.layout = layout
        self.name = name
    }

    /// Internal meta-data at the end of `target`, with the default AL geometry.
    public static func internalMetadata(_ target: any BlockTarget, name: String) throws(MetadataError) -> MetadataDevice {
        do {
            return MetadataDevice(target: target, layout: try MetadataLayout.internalLayout(deviceBytes: target.size), name: name)
        } catch {
            throw MetadataError("\(name): \(error)")
        }
    }

    // MARK: Superblock

    /// Reads and decodes the superblock.
    public func readSuperblock() throws(MetadataError) -> Superblock {
        let bytes: [UInt8]
        do {
            bytes = try target.read(count: Superblock.size, at: layout.superblockOffset)
        } catch {
            throw MetadataError("\(name): cannot read the superblock at byte offset \(layout.superblockOffset): \(error)")
        }
        let superblock: Superblock
        do {
            superblock = try Superblock(bytes: bytes)
        } catch {
            throw MetadataError("\(name): no valid v08 meta-data at byte offset \(layout.superblockOffset): \(error)")
        }
        return superblock
    }

    /// Reads the superblock and checks it against the layout expected for this device.
    public func readCheckedSuperblock() throws(MetadataError) -> Superblock {
        let superblock = try readSuperblock()
        let expectedAL = layout.activityLogOffsetSectors
        if Int64(superblock.activityLogOffsetSectors) != expectedAL && layout.placement != .internal {
            throw MetadataError("\(name): size mismatch: superblock at byte offset \(layout.superblockOffset) gives al_offset \(superblock.activityLogOffsetSectors) sectors, expected \(expectedAL)")
        }
        if layout.placement == .internal {
            let bitmapEnd = layout.superblockOffset + Int64(superblock.bitmapOffsetSectors) * 512
            let alStart = layout.superblockOffset + Int64(superblock.activityLogOffsetSectors) * 512
            guard bitmapEnd >= 0, bitmapEnd <= alStart, alStart < layout.superblockOffset,
                  -Int64(superblock.bitmapOffsetSectors) + 8 == Int64(superblock.sizeSectors) else {
                throw MetadataError("\(name): size mismatch: superblock at byte offset \(layout.superblockOffset) has md_size_sect \(superblock.sizeSectors), al_offset \(superblock.activityLogOffsetSectors), bm_offset \(superblock.bitmapOffsetSectors), which do not fit a device of \(target.size) bytes (was it resized?)")
            }
        }
        let dataSectors = UInt64(dataBytes(superblock) / 512)
        if superblock.lastAgreedSizeSectors > dataSectors {
            throw MetadataError("\(name): size mismatch: last agreed size \(superblock.lastAgreedSizeSectors) sectors (superblock offset 0x00) is larger than the \(dataSectors) sectors of data this device holds")
        }
        return superblock
    }

    /// Bytes of usable data, per the superblock's own offsets for internal meta-data.
    public func dataBytes(_ superblock: Superblock) -> Int64 {
        switch layout.placement {
        case .internal: layout.superblockOffset + Int64(superblock.bitmapOffsetSectors) * 512
        default: layout.usableDataBytes
        }
    }

    /// Writes the superblock (and flushes it when `flush` is set: `md-flushes`).
    public func writeSuperblock(_ superblock: Superblock, flush: Bool = true) throws(MetadataError) {
        do {
            try target.write(superblock.encoded(), at: layout.superblockOffset)
            if flush { try target.flush() }
        } catch {
            throw MetadataError("\(name): cannot write the superblock at byte offset \(layout.superblockOffset): \(error)", cause: error)
        }
    }

    // MARK: Bitmap

    /// Absolute byte offset of the bitmap per the superblock.
    public func bitmapOffset(_ superblock: Superblock) -> Int64 {
        layout.superblockOffset + Int64(superblock.bitmapOffsetSectors) * 512
    }

    /// Bytes available for the bitmap per the superblock.
    public func bitmapCapacity(_ superblock: Superblock) -> Int64 {
        switch layout.placement {
        case .internal: Int64(superblock.activityLogOffsetSectors - superblock.bitmapOffsetSectors) * 512
        default: Int64(superblock.sizeSectors) * 512 - Int64(superblock.bitmapOffsetSectors) * 512
        }
    }

    /// Reads `byteCount` bytes of bitmap as 64-bit words.
    public func readBitmapWords(_ superblock: Superblock, byteCount: Int) throws(MetadataError) -> [UInt64] {
        guard Int64(byteCount) <= bitmapCapacity(superblock) else {
            throw MetadataError("\(name): size mismatch: a bitmap of \(byteCount) bytes does not fit the \(bitmapCapacity(superblock)) bytes between bm_offset and al_offset")
        }
        let bytes: [UInt8]
        do {
            bytes = try target.read(count: byteCount, at: bitmapOffset(superblock))
        } catch {
            throw MetadataError("\(name): cannot read the bitmap at byte offset \(bitmapOffset(superblock)): \(error)")
        }
        return stride(from: 0, to: byteCount, by: 8).map { start in
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[start + $1]) << (8 * $1) }
        }
    }

    /// Reads the bitmap for `dataBytes` of data.
    public func readBitmap(_ superblock: Superblock, dataBytes: Int64) throws(MetadataError) -> Bitmap {
        let bitmap = Bitmap(coveringBytes: dataBytes)
        let bytes = (Int(bitmap.bitCount) + 63) / 64 * 8
        let words = try readBitmapWords(superblock, byteCount: bytes)
        var raw = [UInt8](repeating: 0, count: bytes)
        for (index, word) in words.enumerated() { for b in 0..<8 { raw[index * 8 + b] = UInt8(truncatingIfNeeded: word >> (8 * b)) } }
        return Bitmap(onDisk: raw, bitCount: bitmap.bitCount)
    }

    /// Writes the whole bitmap (padded to 4 KiB) and flushes when asked.
    public func writeBitmap(_ bitmap: Bitmap, _ superblock: Superblock, flush: Bool = true) throws(MetadataError) {
        guard bitmap.pageCount > 0 else { return }
        try writeBitmapPages([BitmapPageRun(firstPage: 0, bytes: bitmap.encodedPages(0..<bitmap.pageCount))], superblock, flush: flush)
    }

    /// Writes runs of encoded bitmap pages (``Bitmap/unsavedPageImages``) and flushes when
    /// asked: saving a bitmap costs the pages a change touched, not the whole bitmap.
    public func writeBitmapPages(_ runs: [BitmapPageRun], _ superblock: Superblock, flush: Bool = true) throws(MetadataError) {
        guard !runs.isEmpty else { return }
        let capacity = bitmapCapacity(superblock)
        for run in runs {
            let offset = bitmapOffset(superblock) + Int64(run.firstPage * Bitmap.pageBytes)
            guard Int64(run.pages.upperBound * Bitmap.pageBytes) <= capacity else {
                throw MetadataError("\(name): bitmap pages \(run.pages.lowerBound)..<\(run.pages.upperBound) lie past the meta-data area's bitmap (\(capacity) bytes)")
            }
            do {
                try target.write(run.bytes, at: offset)
            } catch {
                throw MetadataError("\(name): cannot write bitmap pages \(run.pages.lowerBound)..<\(run.pages.upperBound) at byte offset \(offset): \(error)", cause: error)
            }
        }
        guard flush else { return }
        do {
            try target.flush()
        } catch {
            throw MetadataError("\(name): cannot flush the bitmap pages written at byte offset \(bitmapOffset(superblock)): \(error)", cause: error)
        }
    }

    // MARK: Activity log

    /// Absolute byte offset of the activity log per the superblock.
    public func activityLogOffset(_ superblock: Superblock) -> Int64 {
        layout.superblockOffset + Int64(superblock.activityLogOffsetSectors) * 512
    }

    /// Reads every block of the AL ring.
    public func readActivityLogBlocks(_ superblock: Superblock) throws(MetadataError) -> [[UInt8]] {
        let count = Int(superblock.activityLogStripes * superblock.activityLogStripeSize4k)
        let base = activityLogOffset(superblock)
        var blocks: [[UInt8]] = []
        for index in 0..<count {
            do {
                blocks.append(try target.read(count: 4096, at: base + Int64(index) * 4096))
            } catch {
                throw MetadataError("\(name): cannot read activity log block \(index) at byte offset \(base + Int64(index) * 4096): \(error)")
            }
        }
        return blocks
    }

    /// Writes one AL transaction into its ring slot.
    public func writeActivityLogTransaction(_ transaction: ActivityLogTransaction, _ superblock: Superblock, flush: Bool = true) throws(MetadataError) {
        let index = ActivityLogTransaction.blockIndex(
            of: transaction.number, stripes: Int(superblock.activityLogStripes), stripeSize4k: Int(superblock.activityLogStripeSize4k))
        let offset = activityLogOffset(superblock) + Int64(index) * 4096
        do {
            try target.write(transaction.encoded(), at: offset)
            if flush { try target.flush() }
        } catch {
            throw MetadataError("\(name): cannot write activity log transaction \(transaction.number) at byte offset \(offset): \(error)", cause: error)
        }
    }
}
