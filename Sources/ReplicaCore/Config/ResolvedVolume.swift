/// One volume of a resource as a particular node sees it: the `on` section of that node
/// merged over the resource level, with `common` and resource options applied.
public struct ResolvedVolume: Sendable, Equatable {
    /// The resource.
    public var resourceName: String
    /// The volume number.
    public var number: Int
    /// The device (minor).
    public var device: DeviceSpec
    /// The backing disk.
    public var disk: DiskSpec
    /// Where the meta-data lives.
    public var metaDisk: MetaDiskSpec
    /// Disk options, from `common`, the resource and the volume (later ones win).
    public var diskOptions: [OptionSetting]
    /// Where the volume was defined.
    public var location: SourceLocation

    /// `RES/VOL`, as drbdadm names a volume.
    public var label: String { "\(resourceName)/\(number)" }

    /// The value of a disk option, or its default.
    public func diskOption(_ name: String) -> String? {
        diskOptions.last { $0.name == name }?.value ?? OptionTable.diskBlockDefinition(name)?.defaultValue
    }
}

/// How a node finds itself and its volumes in a configuration.
public struct NodeResolver: Sendable {
    /// The node name (`uname -n`, `--node` or `REPLICA_NODE`).
    public var nodeName: String

    /// Creates a resolver for `nodeName`.
    public init(nodeName: String) { self.nodeName = nodeName }

    /// The `on` section of this node in `resource`.
    public func host(in resource: ResourceSpec) throws(ConfigError) -> HostSpec {
        guard let host = resource.hosts.first(where: { $0.names.contains(nodeName) }) else {
            let names = resource.hosts.flatMap(\.names).joined(separator: ", ")
            throw ConfigError(resource.location, "resource \(resource.name) has no 'on \(nodeName)' section (its hosts: \(names)); this node is '\(nodeName)' (set it with --node NAME or REPLICA_NODE)")
        }
        return host
    }

    /// Every volume of `resource` on this node, by number.
    public func volumes(of resource: ResourceSpec, in configuration: Configuration) throws(ConfigError) -> [ResolvedVolume] {
        let host = try host(in: resource)
        var numbers = Set(resource.volumes.map(\.number))
        numbers.formUnion(host.volumes.map(\.number))
        var result: [ResolvedVolume] = []
        for number in numbers.sorted() {
            let base = resource.volumes.first { $0.number == number }
            let local = host.volumes.first { $0.number == number }
            let location = local?.location ?? base?.location ?? host.location
            guard let device = local?.device ?? base?.device else {
                throw ConfigError(location, "volume \(number) of resource \(resource.name) has no 'device' on host \(nodeName)")
            }
            guard let disk = local?.disk ?? base?.disk else {
                throw ConfigError(location, "volume \(number) of resource \(resource.name) has no 'disk' on host \(nodeName)")
            }
            let metaDisk = local?.metaDisk ?? base?.metaDisk ?? .internal
            let connections = connectionSections(of: resource)
            let options = (configuration.common?.disk ?? []) + (configuration.common?.peerDevice ?? [])
                + resource.sections.disk + resource.sections.peerDevice
                + connections.flatMap { $0.disk + $0.peerDevice }
                + (base?.diskOptions ?? []) + (local?.diskOptions ?? [])
            result.append(ResolvedVolume(resourceName: resource.name, number: number, device: device, disk: disk,
                                         metaDisk: metaDisk, diskOptions: options, location: location))
        }
        guard !result.isEmpty else {
            throw ConfigError(resource.location, "resource \(resource.name) defines no volume for host \(nodeName) (no device/disk/meta-disk and no 'volume' block)")
        }
        return result
    }

    /// The effective `net` options of `resource` (common first, then the resource, then the
    /// `connection-mesh` and `connection` blocks this node is part of: later ones win).
    public func netOptions(of resource: ResourceSpec, in configuration: Configuration) -> [OptionSetting] {
        (configuration.common?.net ?? []) + resource.sections.net + connectionSections(of: resource).flatMap(\.net)
    }

    /// The option sections of the `connection-mesh` and `connection` blocks of `resource` that
    /// include this node (a two-node resource has at most one connection).
    func connectionSections(of resource: ResourceSpec) -> [OptionSections] {
        let me = resource.hosts.first { $0.names.contains(nodeName) }?.names ?? [nodeName]
        var sections: [OptionSections] = []
        if let mesh = resource.mesh, me.contains(where: mesh.includes) { sections.append(mesh.sections) }
        for connection in resource.connections {
            let hosts = connection.hosts.map(\.name) + connection.paths.flatMap { $0.map(\.name) }
            if hosts.contains(where: { me.contains($0) }) { sections.append(connection.sections) }
        }
        return sections
    }

    /// The `handlers { }` commands of `resource` by handler name (the resource's override common's).
    public func handlerCommands(of resource: ResourceSpec, in configuration: Configuration) -> [String: String] {
        var commands: [String: String] = [:]
        for setting in (configuration.common?.handlers ?? []) + resource.sections.handlers { commands[setting.name] = setting.value }
        return commands
    }
}
