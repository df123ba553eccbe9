/// The `MDF_*` flag bits of the v08 superblock (reference 4.4).
public struct MetadataFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    /// Creates flags from the raw superblock value.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// MDF_CONSISTENT: the data is consistent.
    public static let consistent = MetadataFlags(rawValue: 0x1)
    /// MDF_PRIMARY_IND: the node was Primary.
    public static let primaryIndicator = MetadataFlags(rawValue: 0x2)
    /// MDF_CONNECTED_IND: the node was connected.
    public static let connectedIndicator = MetadataFlags(rawValue: 0x4)
    /// MDF_FULL_SYNC: setting all bits was in progress.
    public static let fullSync = MetadataFlags(rawValue: 0x8)
    /// MDF_WAS_UP_TO_DATE: the data was UpToDate.
    public static let wasUpToDate = MetadataFlags(rawValue: 0x10)
    /// MDF_PEER_OUT_DATED: the peer's disk is known Outdated or Inconsistent.
    public static let peerOutdated = MetadataFlags(rawValue: 0x20)
    /// MDF_CRASHED_PRIMARY: a Primary crashed and has not seen its peer since.
    public static let crashedPrimary = MetadataFlags(rawValue: 0x40)
    /// MDF_AL_CLEAN: the activity log needs no replay.
    public static let activityLogClean = MetadataFlags(rawValue: 0x80)
    /// MDF_AL_DISABLED: `al-updates no`.
    public static let activityLogDisabled = MetadataFlags(rawValue: 0x100)

    /// The seven flags of `get-gi`/`set-gi`, in drbdmeta's order.
    public static let generationFlagOrder: [MetadataFlags] = [
        .consistent, .wasUpToDate, .primaryIndicator, .connectedIndicator, .fullSync, .peerOutdated, .crashedPrimary,
    ]

    /// The disk state at attach (reference 2.4), before the peer is known.
    public var attachDiskState: DiskState {
        if !contains(.consistent) { return .inconsistent }
        if !contains(.wasUpToDate) { return .outdated }
        return .consistent
    }

    /// What `drbdmeta dstate` prints for these flags.
    public var drbdmetaDiskState: DiskState {
        if !contains(.consistent) { return .inconsistent }
        if !contains(.wasUpToDate) { return .outdated }
        return contains(.peerOutdated) ? .upToDate : .consistent
    }
}
