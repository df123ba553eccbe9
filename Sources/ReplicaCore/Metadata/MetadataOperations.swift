/// The offline meta-data operations of `drbdmeta` on a ``MetadataDevice``: create-md,
/// apply-al, set-gi, outdate, invalidate.
extension MetadataDevice {
    /// Writes fresh meta-data: superblock (current UUID 4, flags AL_CLEAN), an initialized
    /// activity log and an all-clear bitmap. Refuses to overwrite valid meta-data unless `force`.
    public func create(force: Bool, activityLogExtents: Int = 257) throws(MetadataError) {
        if !force, let existing = try? readSuperblock() {
            throw MetadataError("\(name): valid v08 meta-data found at byte offset \(layout.superblockOffset) (current UUID \(String(existing.uuids.current, radix: 16, uppercase: true))); refusing to overwrite it without --force")
        }
        let superblock = Superblock(layout: layout, activityLogExtents: activityLogExtents)
        let bitmapBytes = Int(layout.bitmapBytes)
        do {
            let zeroes = [UInt8](repeating: 0, count: min(bitmapBytes, 1 << 20))
            var done = 0
            while done < bitmapBytes {
                let count = min(zeroes.count, bitmapBytes - done)
                try target.write(count == zeroes.count ? zeroes : Array(zeroes[0..<count]), at: bitmapOffset(superblock) + Int64(done))
                done += count
            }
            let initialized = ActivityLogTransaction.initialized.encoded()
            for index in 0..<layout.activityLogBlocks {
                try target.write(initialized, at: activityLogOffset(superblock) + Int64(index) * 4096)
            }
            try target.flush()
        } catch {
            throw MetadataError("\(name): cannot initialize the meta-data area: \(error)")
        }
        try writeSuperblock(superblock)
    }

    /// The result of `apply-al`.
    public struct ApplyActivityLogResult: Sendable, Equatable {
        /// The replay of the ring.
        public var replay: ActivityLogReplay
        /// Bits that were newly set in the bitmap.
        public var bitsSet: Int64
    }

    /// Replays the activity log into the bitmap (every active extent becomes out of sync),
    /// then writes the superblock with clean magic and AL_CLEAN.
    @discardableResult
    public func applyActivityLog() throws(MetadataError) -> ApplyActivityLogResult {
        var superblock = try readCheckedSuperblock()
        let replay = ActivityLogReplay(blocks: try readActivityLogBlocks(superblock), slots: Int(superblock.activityLogExtents))
        if replay.damagedBlocks.count > 1 {
            let list = replay.damagedBlocks.map { "block \($0.index): \($0.reason)" }.joined(separator: "; ")
            throw MetadataError("\(name): activity log at byte offset \(activityLogOffset(superblock)) has \(replay.damagedBlocks.count) damaged transactions (at most one torn transaction is expected): \(list); nothing was written")
        }
        var bitsSet: Int64 = 0
        if !replay.activeExtents.isEmpty {
            let data = dataBytes(superblock)
            var bitmap = try readBitmap(superblock, dataBytes: data)
            let bitsPerExtent = ActivityLog.extentSize / Bitmap.bytesPerBit
            for extent in replay.activeExtents {
                bitsSet += bitmap.set(Int64(extent) * bitsPerExtent..<(Int64(extent) + 1) * bitsPerExtent)
            }
            try writeBitmap(bitmap, superblock)
        }
        superblock.magic = Superblock.magicV08
        superblock.flags.insert(.activityLogClean)
        try writeSuperblock(superblock)
        return ApplyActivityLogResult(replay: replay, bitsSet: bitsSet)
    }
}
