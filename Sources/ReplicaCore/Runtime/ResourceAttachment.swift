/// Every volume of a configured resource as one node attaches it: each disk opened with its
/// meta-data (the activity log replayed where it was left unclean), or — `disk none` — an
/// engine without a disk; with the resource's handlers and bounds. What ``ReplicationRuntime``
/// runs; the daemon's `up` and ``ReplicatedVolume`` build it.
public struct ResourceAttachment: Sendable {
    /// The resource's name.
    public let name: String
    /// The volumes, by ascending number.
    public let volumes: [VolumeSetup]
    /// The attachments of the volumes with a disk (to give back if the resource does not come up).
    public let attachments: [VolumeAttachment]
    /// The resolved volumes (device minors, disks).
    public let resolved: [ResolvedVolume]
    /// The bounds of back-pressure (`max-buffers`, `max-io-depth`).
    public let limits: LinkLimits

    /// The superblock of volume `number` as it was found, before the attach marked it in use
    /// (nil for a volume without a disk).
    public func foundSuperblock(of number: Int) -> Superblock? {
        guard let index = resolved.firstIndex(where: { $0.number == number }), case .path = resolved[index].disk else { return nil }
        let withDisks = resolved[..<index].filter { if case .path = $0.disk { true } else { false } }.count
        return attachments[withDisks].foundSuperblock
    }

    /// Attaches every volume of `resource` for `node`, after checking that Replica honours
    /// every option the resource sets (``ResourceSupport/check(_:in:node:)``). If a volume
    /// fails to attach, the volumes attached before it are given back (their superblocks
    /// written back as found) and the error is thrown: nothing is left half attached.
    /// `carrying`: the engines that used these disks before in this process, by volume number
    /// (``ReplicationRuntime/engines()``), for what their meta-data may not say.
    public static func attach(_ configuration: Configuration, resource name: String, node: String,
                              carrying previous: [UInt16: VolumeEngine] = [:],
                              entropy: () -> UInt64 = { UInt64.random(in: 0...UInt64.max) }) throws -> ResourceAttachment {
        guard let resource = configuration.resource(named: name) else {
            throw ConfigError(SourceLocation(file: configuration.file, line: 1, column: 1), "no resource named \(name)")
        }
        try ResourceSupport.check(resource, in: configuration, node: node)
        let resolver = NodeResolver(nodeName: node)
        let resolved = try resolver.volumes(of: resource, in: configuration)
        let net = resolver.netOptions(of: resource, in: configuration)
        let commands = resolver.handlerCommands(of: resource, in: configuration)
        var setups: [VolumeSetup] = []
        var attachments: [VolumeAttachment] = []
        do {
            for volume in resolved {
                let handlers = HandlerRunner(commands: commands, resource: name, minor: volume.device.minor, volume: volume.number,
                                             configurationFile: configuration.file)
                guard case .path = volume.disk else {
                    // `disk none`: a diskless client, served by its peer.
                    let engine = VolumeEngine.withoutDisk(configuration: EngineConfiguration(volume: volume, net: net), entropySeed: entropy())
                    setups.append(VolumeSetup(number: UInt16(volume.number), disklessEngine: engine, handlers: handlers))
                    continue
                }
                let attachment = try VolumeAttachment.attach(volume, net: net, entropySeed: entropy(), carrying: previous[UInt16(volume.number)])
                attachments.append(attachment)
                setups.append(VolumeSetup(number: UInt16(volume.number), attachment: attachment, handlers: handlers))
            }
        } catch {
            for attachment in attachments { try? attachment.abandon() }
            throw error
        }
        let options = (configuration.common?.resource ?? []) + resource.sections.resource
        return ResourceAttachment(name: name, volumes: setups, attachments: attachments, resolved: resolved,
                                  limits: LinkLimits(net: net, resourceOptions: options))
    }

    /// Gives every attached disk back unused (the resource did not come up).
    public func abandon() {
        for attachment in attachments { try? attachment.abandon() }
    }
}
