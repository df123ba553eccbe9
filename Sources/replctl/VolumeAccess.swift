import ArgumentParser
import ReplicaCore

/// Finds the volumes a `RES` or `RES/VOL` argument names on this node, and opens their meta-data.
struct VolumeAccess {
    let configuration: Configuration
    let resolver: NodeResolver

    init(options: ConfigOptions) throws {
        configuration = try options.load()
        resolver = NodeResolver(nodeName: options.nodeName)
    }

    /// The volumes named by `RES`, `RES/VOL` or `all`.
    func volumes(_ argument: String) throws -> [ResolvedVolume] {
        let parts = argument.split(separator: "/", maxSplits: 1).map(String.init)
        let names = parts[0] == "all" ? configuration.resources.map(\.name) : [parts[0]]
        var result: [ResolvedVolume] = []
        for name in names {
            guard let resource = configuration.resource(named: name) else {
                throw CommandFailure(message: "'\(name)' not defined in your config (\(configuration.file)).", code: ExitCodes.configuration)
            }
            do {
                result += try resolver.volumes(of: resource, in: configuration)
            } catch {
                throw CommandFailure(message: error.description, code: ExitCodes.configuration)
            }
        }
        if parts.count == 2 {
            guard let number = Int(parts[1]), let volume = result.first(where: { $0.number == number }) else {
                throw CommandFailure(message: "resource \(parts[0]) has no volume \(parts[1]) on this node", code: ExitCodes.configuration)
            }
            return [volume]
        }
        return result
    }

    /// Exactly one volume, for commands that print one volume's meta-data.
    func singleVolume(_ argument: String) throws -> ResolvedVolume {
        let all = try volumes(argument)
        guard all.count == 1 else {
            throw CommandFailure(message: "\(argument) has \(all.count) volumes (\(all.map(\.label).joined(separator: ", "))); name one as RES/VOL", code: 1)
        }
        return all[0]
    }

    /// Opens the meta-data area of `volume`.
    func metadata(_ volume: ResolvedVolume) throws -> MetadataDevice {
        guard case .path(let diskPath) = volume.disk else {
            throw CommandFailure(message: "\(volume.label) has 'disk none': a diskless volume has no meta-data", code: ExitCodes.metadata)
        }
        do {
            let data = try FileBlockTarget(path: diskPath)
            switch volume.metaDisk {
            case .internal:
                return MetadataDevice(target: data, layout: try MetadataLayout.internalLayout(deviceBytes: data.size), name: diskPath)
            case .external(let path, nil):
                let meta = try FileBlockTarget(path: path)
                let layout = try MetadataLayout.externalLayout(dataBytes: data.size, metadataDeviceBytes: meta.size)
                return MetadataDevice(target: meta, layout: layout, name: path)
            case .external(let path, let index?):
                let meta = try FileBlockTarget(path: path)
                let layout = try MetadataLayout.indexedLayout(dataBytes: data.size, metadataDeviceBytes: meta.size, index: index)
                return MetadataDevice(target: meta, layout: layout, name: "\(path) [\(index)]")
            }
        } catch let error as BlockIOError {
            throw CommandFailure(message: "\(volume.label): \(error)", code: ExitCodes.metadata)
        } catch let error as MetadataLayout.LayoutError {
            throw CommandFailure(message: "\(volume.label) (\(diskPath)): \(error)", code: ExitCodes.metadata)
        }
    }

    /// Opens the one volume `resource` names and reads its superblock.
    static func superblock(options: ConfigOptions, resource: String) throws -> (MetadataDevice, Superblock) {
        let access = try VolumeAccess(options: options)
        let device = try access.metadata(try access.singleVolume(resource))
        return (device, try superblock(device))
    }

    /// Reads the superblock, turning a failure into exit code 20.
    static func superblock(_ device: MetadataDevice) throws -> Superblock {
        do { return try device.readSuperblock() } catch { throw CommandFailure(message: error.description, code: ExitCodes.metadata) }
    }
}

extension ResolvedVolume {
    /// Refuses to write this volume's meta-data while this node's daemon has its disk attached
    /// (drbdmeta's "Device is configured!"): the daemon owns that meta-data, and writing under
    /// it would lose the record of writes. A Diskless volume, or one that is not up, may be
    /// written (the disk replacement: create-md on the new disk, then attach).
    func refuseWhileAttached(_ options: ConfigOptions) throws {
        let request = ControlRequest(command: "dstate", resource: resourceName)
        guard let response = DaemonClient.send(request, runDirectory: options.runDirectory), response.exitCode == 0 else { return }
        let states = response.output.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard states.split(separator: "/").first == "Diskless" else {
            throw CommandFailure(message: "\(label): the disk is attached (\(states)): 'replctl detach \(resourceName)' or 'replctl down \(resourceName)' first", code: ExitCodes.metadata)
        }
    }
}

/// Runs a meta-data operation, turning ``MetadataError`` into exit code 20.
func metadataOperation<T>(_ body: () throws(MetadataError) -> T) throws -> T {
    do { return try body() } catch { throw CommandFailure(message: error.description, code: ExitCodes.metadata) }
}
