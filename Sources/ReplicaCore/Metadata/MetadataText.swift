import Foundation

/// The text forms of `drbdmeta`: `dump-md`, `get-gi`, `show-gi`, and the `set-gi` argument.
public enum MetadataText {
    private static func hex8(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// `get-gi`: `CURRENT:BITMAP:H1:H2:c:u:p:n:f:o:x` with the seven flag bits.
    public static func generationLine(_ superblock: Superblock) -> String {
        let flags = MetadataFlags.generationFlagOrder.map { superblock.flags.contains($0) ? "1" : "0" }
        return ([superblock.uuids.text] + flags).joined(separator: ":")
    }

    /// `show-gi`: the generation line with drbdmeta's legend and the derived states.
    public static func showGenerationIdentifiers(_ superblock: Superblock) -> String {
        let f = superblock.flags
        var out = "\n"
        out += "       +--<  Current data generation UUID  >-\n"
        out += "       |               +--<  Bitmap's base data generation UUID  >-\n"
        out += "       |               |                 +--<  younger history UUID  >-\n"
        out += "       |               |                 |         +-<  older history  >-\n"
        out += "       V               V                 V         V\n"
        out += generationLine(superblock) + "\n"
        out += "                                                                    ^ ^ ^ ^ ^ ^ ^\n"
        out += "                                      -<  Data consistency flag  >--+ | | | | | |\n"
        out += "                             -<  Data was/is currently up-to-date  >--+ | | | | |\n"
        out += "                                  -<  Node was/is currently primary  >--+ | | | |\n"
        out += "                                  -<  Node was/is currently connected  >--+ | | |\n"
        out += "         -<  Node was in the progress of setting all bits in the bitmap  >--+ | |\n"
        out += "                        -<  The peer's disk was out-dated or inconsistent  >--+ |\n"
        out += "      -<  This node was a crashed primary, and has not seen its peer since   >--+\n"
        out += "\n"
        let role = f.contains(.primaryIndicator) ? (f.contains(.crashedPrimary) ? "crashed Primary" : "Primary") : "Secondary"
        let connection = f.contains(.connectedIndicator) ? "Connected" : "StandAlone"
        let disk = f.contains(.consistent) ? (f.contains(.wasUpToDate) ? "UpToDate" : "Outdated") : "Inconsistent"
        var flagsLine = "flags: \(role), \(connection), \(disk)"
        if f.contains(.fullSync) { flagsLine += ", need full sync" }
        if f.contains(.peerOutdated) { flagsLine += ", peer Outdated" }
        out += flagsLine + "\n"
        out += "meta-data: \(f.contains(.activityLogClean) ? "clean" : "need apply-al")\n"
        if superblock.lastAgreedSizeSectors == 0 {
            out += "zero size device -- never seen peer yet?\n"
        } else {
            out += "last agreed size: \(humanSize(kibibytes: superblock.lastAgreedSizeSectors / 2)) (\(superblock.lastAgreedSizeSectors) sectors)\n"
            out += "last agreed max bio size: \(superblock.lastAgreedPeerMaxBioSize) Byte\n"
        }
        return out
    }

    /// drbdmeta's size form: KiB scaled down while ≥ 10000, rounding to nearest.
    static func humanSize(kibibytes: UInt64) -> String {
        let units = ["KB", "MB", "GB", "TB", "PB", "EB"]
        var size = kibibytes
        var unit = 0
        while size >= 10000, unit < units.count - 1 {
            size = (size + 512) >> 10
            unit += 1
        }
        return "\(size) \(units[unit])"
    }

    /// Bytes of bitmap that `dump-md` prints: from the last agreed size, rounded up to 4 KiB.
    public static func dumpedBitmapBytes(lastAgreedSizeSectors: UInt64) -> Int {
        lastAgreedSizeSectors == 0 ? 0 : Int(MetadataLayout.bitmapBytes(forSectors: Int64(lastAgreedSizeSectors)))
    }

    /// `dump-md`, v08 form. `bitmapWords` are the on-disk words (64-bit values).
    public static func dump(_ superblock: Superblock, layout: MetadataLayout, bitmapWords: [UInt64], commandLine: String, hostName: String, date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss Z"
        formatter.timeZone = TimeZone(identifier: "UTC")
        var out = "# DRBD meta data dump\n"
        out += "# \(formatter.string(from: date)) [\(Int(date.timeIntervalSince1970))]\n"
        out += "# \(hostName)> \(commandLine)\n#\n\n"
        out += "version \"v08\";\n\n"
        if !superblock.isCleanMagic {
            out += "This_is_an_unclean_meta_data_dump._Don't_trust_the_bitmap.\n"
            out += "# You should \"apply-al\" first, if you plan to restore this.\n\n"
        }
        out += "# md_size_sect \(superblock.sizeSectors)\n"
        out += "# md_offset \(layout.superblockOffset)\n"
        out += "# al_offset \(layout.superblockOffset + Int64(superblock.activityLogOffsetSectors) * 512)\n"
        out += "# bm_offset \(layout.superblockOffset + Int64(superblock.bitmapOffsetSectors) * 512)\n\n"
        let u = superblock.uuids
        out += "uuid {\n    " + [u.current, u.bitmap, u.historyStart, u.historyEnd].map { "0x\($0.hex16);" }.joined(separator: " ") + "\n"
        out += "    flags 0x\(hex8(superblock.flags.rawValue));\n}\n"
        out += "# al-extents \(superblock.activityLogExtents);\n"
        out += "la-size-sect \(superblock.lastAgreedSizeSectors);\n"
        out += "bm-byte-per-bit \(superblock.bitmapBytesPerBit);\n"
        out += "device-uuid 0x\(superblock.deviceUUID.hex16);\n"
        out += "la-peer-max-bio-size \(superblock.lastAgreedPeerMaxBioSize);\n"
        out += "al-stripes \(superblock.activityLogStripes);\n"
        out += "al-stripe-size-4k \(superblock.activityLogStripeSize4k);\n"
        out += "# bm-bytes \(bitmapWords.count * 8);\n"
        out += "bm {\n" + bitmapBody(bitmapWords) + "}\n"
        out += "# bits-set \(bitmapWords.reduce(0) { $0 + $1.nonzeroBitCount });\n"
        return out
    }

    /// The `bm { }` body: four words a line, runs of 0 or all-ones words of at least eight
    /// (from a line start) as `N times 0x...;`, a `# at NkB` comment every 32 words.
    static func bitmapBody(_ words: [UInt64]) -> String {
        var out = ""
        var index = 0
        while index < words.count {
            if index % 32 == 0 { out += "   # at \(index * 64 * 4)kB\n" }
            let word = words[index]
            if word == 0 || word == ~0 {
                var end = index
                while end < words.count, words[end] == word { end += 1 }
                let run = (end - index) / 4 * 4
                if end - index >= 8 {
                    let count = end == words.count ? end - index : run
                    out += "    \(count) times 0x\(word.hex16);\n"
                    index += count
                    continue
                }
            }
            let line = words[index..<min(index + 4, words.count)]
            out += "    " + line.map { "0x\($0.hex16);" }.joined(separator: " ") + "\n"
            index += 4
        }
        return out
    }

    /// Errors in a `set-gi` argument, worded as drbdmeta words them.
    public struct SetGenerationError: Error, Equatable, CustomStringConvertible {
        /// The message.
        public var description: String
    }

    /// Applies a `set-gi` argument (`C:B:H1:H2:c:u:p:n:f:o:x`, empty fields keep the old
    /// value, extra fields are ignored) to `superblock`.
    public static func applySetGenerationIdentifiers(_ text: String, to superblock: Superblock) throws(SetGenerationError) -> Superblock {
        var result = superblock
        let fields = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var uuids = [superblock.uuids.current, superblock.uuids.bitmap, superblock.uuids.historyStart, superblock.uuids.historyEnd]
        for (index, field) in fields.prefix(4).enumerated() where !field.isEmpty {
            var digits = Substring(field)
            if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
            guard let value = UInt64(digits, radix: 16) else { throw SetGenerationError(description: "'\(field)' is not a number.") }
            uuids[index] = value
        }
        result.uuids = GenerationUUIDs(current: uuids[0], bitmap: uuids[1], historyStart: uuids[2], historyEnd: uuids[3])
        for (index, field) in fields.dropFirst(4).prefix(7).enumerated() where !field.isEmpty {
            let flag = MetadataFlags.generationFlagOrder[index]
            switch field {
            case "0": result.flags.remove(flag)
            case "1": result.flags.insert(flag)
            default: throw SetGenerationError(description: "'\(field)' is not 0 or 1.")
            }
        }
        return result
    }
}
