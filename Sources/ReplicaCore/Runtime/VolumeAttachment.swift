/// Attaching a configured volume: open the backing disk and its meta-data, replay the
/// activity log, read superblock and bitmap, and build the engine with the resource's options.
public struct VolumeAttachment: Sendable {
    /// The backing disk.
    public let disk: any BlockTarget
    /// Its meta-data area.
    public let metadata: MetadataDevice
    /// The engine, ready to run.
    public let engine: VolumeEngine
    /// `md-flushes`.
    public let metadataFlushes: Bool
    /// The superblock as it was found, before the attachment marked it in use.
    public let foundSuperblock: Superblock

    /// Attaches `volume` of a configuration. A volume with `disk none` has nothing to attach
    /// (it runs ``VolumeEngine/withoutDisk(configuration:entropySeed:)``, as ``ReplicatedVolume`` does).
    public static func attach(_ volume: ResolvedVolume, net: [OptionSetting], entropySeed: UInt64, carrying previous: VolumeEngine? = nil) throws -> VolumeAttachment {
        guard case .path(let path) = volume.disk else {
            throw MetadataError("\(volume.label) has 'disk none': there is no disk to attach")
        }
        let disk = try FileBlockTarget(path: path)
        let metadata: MetadataDevice
        switch volume.metaDisk {
        case .internal:
            metadata = MetadataDevice(target: disk, layout: try MetadataLayout.internalLayout(deviceBytes: disk.size), name: path)
        case .external(let metaPath, let index):
            let meta = try FileBlockTarget(path: metaPath)
            let layout = try index.map { try MetadataLayout.indexedLayout(dataBytes: disk.size, metadataDeviceBytes: meta.size, index: $0) }
                ?? MetadataLayout.externalLayout(dataBytes: disk.size, metadataDeviceBytes: meta.size)
            metadata = MetadataDevice(target: meta, layout: layout, name: metaPath)
        }
        var configuration = EngineConfiguration(volume: volume, net: net)
        configuration.activityLogExtents = Int(volume.diskOption("al-extents") ?? "1237") ?? 1237
        return try attach(disk: disk, metadata: metadata, configuration: configuration,
                          metadataFlushes: volume.diskOption("md-flushes") != "no", entropySeed: entropySeed, carrying: previous)
    }

    /// Attaches `disk` whose meta-data is `metadata` (any ``BlockTarget``: files, devices, the
    /// simulator's disks): replays the activity log when the meta-data was left unclean,
    /// recognises a crashed Primary, reads superblock and bitmap, and marks the meta-data
    /// unclean while attached.
    ///
    /// `carrying`: the engine that used this disk before in this process, if any. When it let
    /// the disk go because a meta-data write failed (``VolumeEngine/unwrittenMetadata``), the
    /// disk's meta-data may lag behind what that engine meant it to hold — a generation started
    /// apart, bits of blocks the peer lacks — and those are taken: its UUIDs and flags, its
    /// bitmap's bits added to the disk's. Whether it started its current generation itself is
    /// kept too (``VolumeEngine/succeed(_:)``). (A process that died meanwhile knows nothing of
    /// it; docs/DESIGN.md, failure semantics.)
    public static func attach(disk: any BlockTarget, metadata: MetadataDevice, configuration: EngineConfiguration,
                              metadataFlushes: Bool, entropySeed: UInt64, carrying previous: VolumeEngine? = nil) throws -> VolumeAttachment {
        // Meta-data left unclean (the node crashed while attached): the activity log's hot
        // extents may differ from the peer, so their bits are set (apply-al). After a clean
        // `down` the bitmap already says everything.
        let found = try metadata.readSuperblock()
        let crashed = found.magic == Superblock.magicV08Unclean || !found.flags.contains(.activityLogClean)
        if crashed { try metadata.applyActivityLog() }
        var superblock = try metadata.readCheckedSuperblock()
        // Primary when it went down uncleanly: a crashed Primary (reference 2.4, uuid rule 40),
        // kept until a resync has brought the peer the extents it may have missed.
        if crashed && superblock.flags.contains(.primaryIndicator) { superblock.flags.insert(.crashedPrimary) }
        let dataBytes = metadata.dataBytes(superblock)
        var bitmap = try metadata.readBitmap(superblock, dataBytes: dataBytes)
        var carried = false
        if let intended = previous?.unwrittenMetadata, intended.bitmap.bitCount == bitmap.bitCount {
            superblock.uuids = intended.superblock.uuids
            superblock.flags = intended.superblock.flags.subtracting([.activityLogClean, .fullSync])
            bitmap.formUnion(intended.bitmap)
            // And what the engine marked since it let the disk go (writes of the batch whose
            // meta-data write failed were not done here, but the peer may have them;
            // simulator seed 910795 with meta-data faults).
            if let live = previous?.bitmap, live.bitCount == bitmap.bitCount { bitmap.formUnion(live) }
            carried = true
        }
        if superblock.flags.contains(.fullSync) {
            // MDF_FULL_SYNC (an `invalidate`, or a meta-data write that failed before the disk
            // was let go: its bitmap may lack bits): every block is out of sync. The bitmap is
            // written before the flag is cleared, so a crash in between keeps the flag.
            bitmap.setAll()
            try metadata.writeBitmap(bitmap, superblock, flush: true)
            superblock.flags.remove(.fullSync)
        }
        if carried { try metadata.writeBitmap(bitmap, superblock, flush: true) }
        // While attached the superblock carries the "unclean" magic, so a crash demands apply-al.
        superblock.magic = Superblock.magicV08Unclean
        superblock.flags.remove(.activityLogClean)
        superblock.activityLogExtents = UInt32(configuration.activityLogExtents)
        try metadata.writeSuperblock(superblock, flush: true)
        var engine = VolumeEngine(configuration: configuration, superblock: superblock, bitmap: bitmap, dataSize: dataBytes, entropySeed: entropySeed)
        if let previous { engine.succeed(previous) }
        return VolumeAttachment(disk: disk, metadata: metadata, engine: engine, metadataFlushes: metadataFlushes, foundSuperblock: found)
    }
}

extension VolumeAttachment {
    /// Gives the disk up unused (an attach that was refused): its superblock is written back as
    /// it was found, so the meta-data does not claim the disk was in use.
    public func abandon() throws {
        try metadata.writeSuperblock(foundSuperblock, flush: true)
    }
}

extension EngineConfiguration {
    /// The engine settings of a resolved volume and its resource's `net` options.
    public init(volume: ResolvedVolume, net: [OptionSetting]) {
        self.init()
        func value(_ name: String) -> String? { net.last { $0.name == name }?.value }
        wireProtocol = value("protocol") ?? "C"
        allowTwoPrimaries = value("allow-two-primaries") == "yes"
        afterSB0 = value("after-sb-0pri").flatMap(AfterSplitBrain0Pri.init(rawValue:)) ?? .disconnect
        afterSB1 = value("after-sb-1pri").flatMap(AfterSplitBrain1Pri.init(rawValue:)) ?? .disconnect
        afterSB2 = value("after-sb-2pri").flatMap(AfterSplitBrain2Pri.init(rawValue:)) ?? .disconnect
        rrConflict = value("rr-conflict") ?? "disconnect"
        alwaysASBP = value("always-asbp") == "yes"
        useRLE = value("use-rle") != "no"
        dataIntegrityAlgorithm = value("data-integrity-alg") ?? ""
        maxEpochSize = Int(value("max-epoch-size") ?? "2048") ?? 2048
        pingIntervalMilliseconds = (Int(value("ping-int") ?? "10") ?? 10) * 1000
        pingTimeoutMilliseconds = (Int(value("ping-timeout") ?? "5") ?? 5) * 100
        timeoutMilliseconds = (Int(value("timeout") ?? "60") ?? 60) * 100
        koCount = Int(value("ko-count") ?? "7") ?? 7
        resyncPacing = ResyncRateController.Settings(volume: volume, maxBuffers: value("max-buffers"))
        onIOError = volume.diskOption("on-io-error").flatMap(OnIOError.init(rawValue:)) ?? .detach
    }
}

extension ResyncRateController.Settings {
    /// The pacing options of a volume's `disk` section (defaults where not set) and the
    /// resource's `max-buffers`.
    public init(volume: ResolvedVolume, maxBuffers: String?) {
        self.init()
        func amount(_ name: String, unitBytes: Int64) -> Int64? {
            volume.diskOption(name).flatMap { OptionValueParser.number($0, unitBytes: unitBytes) }
        }
        resyncRateKiB = amount("resync-rate", unitBytes: 1024) ?? resyncRateKiB
        planAheadSteps = Int(amount("c-plan-ahead", unitBytes: 1) ?? Int64(planAheadSteps))
        fillTargetSectors = amount("c-fill-target", unitBytes: 512) ?? fillTargetSectors
        delayTargetSteps = amount("c-delay-target", unitBytes: 1) ?? delayTargetSteps
        maxRateKiB = amount("c-max-rate", unitBytes: 1024) ?? maxRateKiB
        minRateKiB = amount("c-min-rate", unitBytes: 1024) ?? minRateKiB
        maxBuffersPages = maxBuffers.flatMap { OptionValueParser.number($0, unitBytes: 1) } ?? maxBuffersPages
    }
}
