import ArgumentParser
import ReplicaCore

/// `replctl create-md RES[/VOL]`.
struct CreateMetadata: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-md", abstract: "Write new v08 meta-data (refuses to overwrite valid meta-data without --force).")

    @OptionGroup var options: ConfigOptions
    @Flag(help: "Overwrite existing valid meta-data.") var force = false
    @Argument(help: "RES, RES/VOL or all.") var resource: String

    func run() throws {
        try runReporting {
            let access = try VolumeAccess(options: options)
            for volume in try access.volumes(resource) {
                try volume.refuseWhileAttached(options)
                let device = try access.metadata(volume)
                try metadataOperation { () throws(MetadataError) in try device.create(force: force) }
                FileOutput.standardOutput("\(volume.label): writing meta data...\nNew drbd meta data block successfully created.\n")
            }
        }
    }
}

/// `replctl dump-md RES[/VOL]`.
struct DumpMetadata: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dump-md", abstract: "Print the meta-data as drbdmeta dump-md does.")

    @OptionGroup var options: ConfigOptions
    @Flag(help: "Dump unclean meta-data too (marked as untrustworthy).") var force = false
    @Argument(help: "RES or RES/VOL.") var resource: String

    func run() throws {
        try runReporting {
            let access = try VolumeAccess(options: options)
            let volume = try access.singleVolume(resource)
            let device = try access.metadata(volume)
            let superblock = try VolumeAccess.superblock(device)
            if !superblock.isCleanMagic, !force {
                throw CommandFailure(message: "\(device.name): meta-data is unclean (magic 0x8374026C at byte offset \(device.layout.superblockOffset + 60)): run 'replctl apply-al \(volume.label)' first, or add --force", code: ExitCodes.metadata)
            }
            let bytes = MetadataText.dumpedBitmapBytes(lastAgreedSizeSectors: superblock.lastAgreedSizeSectors)
            let words = try metadataOperation { () throws(MetadataError) in try device.readBitmapWords(superblock, byteCount: bytes) }
            FileOutput.standardOutput(MetadataText.dump(
                superblock, layout: device.layout, bitmapWords: words,
                commandLine: "replctl dump-md \(volume.label)", hostName: options.nodeName))
        }
    }
}

/// `replctl apply-al RES[/VOL]`.
struct ApplyActivityLog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply-al", abstract: "Replay the activity log into the bitmap and mark the meta-data clean.")

    @OptionGroup var options: ConfigOptions
    @Argument(help: "RES, RES/VOL or all.") var resource: String

    func run() throws {
        try runReporting {
            let access = try VolumeAccess(options: options)
            for volume in try access.volumes(resource) {
                try volume.refuseWhileAttached(options)
                let device = try access.metadata(volume)
                let result = try metadataOperation { () throws(MetadataError) in try device.applyActivityLog() }
                var line = "\(volume.label): \(result.replay.validTransactions) activity log transactions, \(result.replay.activeExtents.count) active extents, \(result.bitsSet) bitmap bits set"
                if let damaged = result.replay.damagedBlocks.first { line += "; ignored torn transaction in block \(damaged.index) (\(damaged.reason))" }
                FileOutput.standardOutput(line + "\n")
            }
        }
    }
}

/// `replctl get-gi RES[/VOL]`.
struct GetGenerationIdentifiers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get-gi", abstract: "Print the generation identifiers as drbdmeta get-gi does.")

    @OptionGroup var options: ConfigOptions
    @Argument(help: "RES or RES/VOL.") var resource: String

    func run() throws {
        try runReporting {
            let (_, superblock) = try VolumeAccess.superblock(options: options, resource: resource)
            FileOutput.standardOutput(MetadataText.generationLine(superblock) + "\n")
        }
    }
}

/// `replctl show-gi RES[/VOL]`.
struct ShowGenerationIdentifiers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show-gi", abstract: "Explain the generation identifiers as drbdmeta show-gi does.")

    @OptionGroup var options: ConfigOptions
    @Argument(help: "RES or RES/VOL.") var resource: String

    func run() throws {
        try runReporting {
            let (_, superblock) = try VolumeAccess.superblock(options: options, resource: resource)
            FileOutput.standardOutput(MetadataText.showGenerationIdentifiers(superblock))
        }
    }
}

/// `replctl set-gi RES[/VOL] GI`.
struct SetGenerationIdentifiers: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-gi", abstract: "Set generation identifiers and flags (C:B:H1:H2:c:u:p:n:f:o:x; empty fields keep their value).")

    @OptionGroup var options: ConfigOptions
    @Argument(help: "RES or RES/VOL.") var resource: String
    @Argument(help: "The new identifiers, as get-gi prints them.") var identifiers: String

    func run() throws {
        try runReporting {
            try VolumeAccess(options: options).singleVolume(resource).refuseWhileAttached(options)
            let (device, before) = try VolumeAccess.superblock(options: options, resource: resource)
            let after: Superblock
            do throws(MetadataText.SetGenerationError) {
                after = try MetadataText.applySetGenerationIdentifiers(identifiers, to: before)
            } catch {
                throw CommandFailure(message: error.description, code: 1)
            }
            FileOutput.standardOutput("previously \(MetadataText.generationLine(before))\nset GI to  \(MetadataText.generationLine(after))\n")
            try metadataOperation { () throws(MetadataError) in try device.writeSuperblock(after) }
        }
    }
}

/// `replctl dstate RES[/VOL]`: `local/peer` from the daemon when the resource is up, else
/// the disk state the meta-data records (as drbdmeta dstate).
struct DiskStateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dstate", abstract: "Print the disk states (from the meta-data when the resource is not up).")

    @OptionGroup var options: ConfigOptions
    @Argument(help: "RES or RES/VOL.") var resource: String

    func run() throws {
        if let response = DaemonClient.send(ControlRequest(command: "dstate", resource: resource), runDirectory: options.runDirectory), response.exitCode == 0 {
            FileOutput.standardOutput(response.output)
            return
        }
        try runReporting {
            let (_, superblock) = try VolumeAccess.superblock(options: options, resource: resource)
            FileOutput.standardOutput("\(superblock.flags.drbdmetaDiskState)\n")
        }
    }
}
