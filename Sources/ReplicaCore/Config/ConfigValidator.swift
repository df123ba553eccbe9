/// The checks across sections and resources that drbdadm makes after parsing:
/// node-ids, unique minors per host, unique addresses, known hosts in connections,
/// and option combinations.
struct ConfigValidator {
    let configuration: Configuration

    init(_ configuration: Configuration) { self.configuration = configuration }

    /// Checks the configuration; returns warnings for what drbdadm accepts but is suspicious.
    func validate() throws(ConfigError) -> [ConfigError] {
        var minorsByHost: [String: (String, SourceLocation)] = [:]
        // Backing disks and external meta-data slots in use, per host (drbdadm's "conflicting
        // use of disk / meta-disk"): a flexible meta-disk takes its whole device, an indexed
        // one its slot.
        var storageByHost: [String: (String, SourceLocation)] = [:]
        var addresses: [NetworkAddress: (String, SourceLocation)] = [:]
        var warnings: [ConfigError] = []
        for resource in configuration.resources {
            warnings += try validateHosts(resource)
            for host in resource.hosts {
                let keys = host.names.isEmpty ? [host.floatingAddress!.description] : host.names
                for volume in effectiveVolumes(resource, host) {
                    for key in keys {
                        var uses: [String] = []
                        if case .path(let path)? = volume.disk { uses.append("disk \(path)") }
                        if case .external(let path, let index)? = volume.metaDisk { uses.append("meta-disk \(path)" + (index.map { " [\($0)]" } ?? " (flexible)")) }
                        for use in uses {
                            if let (owner, first) = storageByHost["\(key)/\(use)"] {
                                throw ConfigError(volume.location, "conflicting use of \(use) on host \(key): by \(owner) (\(first)) and by resource \(resource.name) volume \(volume.number)")
                            }
                            storageByHost["\(key)/\(use)"] = ("resource \(resource.name) volume \(volume.number)", volume.location)
                        }
                    }
                    guard let device = volume.device else { continue }
                    // A device path written twice on a host ("conflicting use of device").
                    if let path = device.path {
                        for key in keys {
                            if let (owner, first) = storageByHost["\(key)/device \(path)"] {
                                throw ConfigError(volume.location, "conflicting use of device \(path) on host \(key): by \(owner) (\(first)) and by resource \(resource.name) volume \(volume.number)")
                            }
                            storageByHost["\(key)/device \(path)"] = ("resource \(resource.name) volume \(volume.number)", volume.location)
                        }
                    }
                    for key in keys {
                        let slot = "\(key)/\(device.minor)"
                        if let (owner, first) = minorsByHost[slot] {
                            throw ConfigError(volume.location, "minor \(device.minor) is used twice on host \(key): by resource \(owner) (\(first)) and by resource \(resource.name)")
                        }
                        minorsByHost[slot] = (resource.name, volume.location)
                    }
                }
                if let address = host.effectiveAddress {
                    if let (owner, first) = addresses[address] {
                        throw ConfigError(host.location, "address \(address) is used twice: by \(owner) (\(first)) and by resource \(resource.name) \(host.label)")
                    }
                    addresses[address] = ("resource \(resource.name) \(host.label)", host.location)
                }
            }
            warnings += optionWarnings(resource)
        }
        return warnings
    }

    private func effectiveVolumes(_ resource: ResourceSpec, _ host: HostSpec) -> [VolumeSpec] {
        var byNumber: [Int: VolumeSpec] = [:]
        for volume in resource.volumes { byNumber[volume.number] = volume }
        for volume in host.volumes {
            var merged = byNumber[volume.number] ?? volume
            if let device = volume.device { merged.device = device; merged.location = volume.location }
            if let disk = volume.disk { merged.disk = disk }
            if let metaDisk = volume.metaDisk { merged.metaDisk = metaDisk }
            byNumber[volume.number] = merged
        }
        return byNumber.keys.sorted().map { byNumber[$0]! }
    }

    private func validateHosts(_ resource: ResourceSpec) throws(ConfigError) -> [ConfigError] {
        var warnings: [ConfigError] = []
        let usesConnections = !resource.connections.isEmpty || resource.mesh != nil

        var nodeIDs: [Int: String] = [:]
        var names: Set<String> = []
        for host in resource.hosts {
            guard let nodeID = host.nodeID else {
                throw ConfigError(host.location, "in resource \(resource.name), \(host.label) { ... }: 'node-id' keyword missing (required unless the resource has exactly two hosts, none gives one and no connection block names them)")
            }
            if let other = nodeIDs[nodeID] {
                throw ConfigError(host.location, "node-id \(nodeID) of \(host.label) is already used by \(other) in resource \(resource.name)")
            }
            nodeIDs[nodeID] = host.label
            for name in host.names {
                guard names.insert(name).inserted else {
                    throw ConfigError(host.location, "host \(name) has two sections in resource \(resource.name)")
                }
            }
        }
        if resource.hosts.count > 2, !usesConnections {
            warnings.append(ConfigError(resource.location, "resource \(resource.name) has \(resource.hosts.count) hosts: with more than two 'on' sections use explicit 'connection' sections or a 'connection-mesh' (no connection is made)"))
        }
        // A single host has no peer to reach it: drbdadm needs no address then (`up` refuses
        // such a resource, ResourceSupport).
        if !usesConnections, resource.hosts.count > 1 {
            for host in resource.hosts where host.effectiveAddress == nil {
                throw ConfigError(host.location, "in resource \(resource.name), \(host.label) { ... }: 'address' keyword missing")
            }
        }
        let known = names
        for connection in resource.connections {
            for host in connection.hosts + connection.paths.flatMap({ $0 }) {
                guard known.contains(host.name) else {
                    throw ConfigError(host.location, "host '\(host.name)' in connection is not defined by an 'on' section of resource \(resource.name)")
                }
                let section = resource.hosts.first { $0.names.contains(host.name) }
                if host.address == nil, section?.effectiveAddress == nil {
                    throw ConfigError(host.location, "resource \(resource.name), host \(host.name): cannot determine which address to use (give 'address' in the connection or in 'on \(host.name)')")
                }
            }
        }
        if let mesh = resource.mesh {
            for name in mesh.hosts where !known.contains(where: { ConnectionMeshSpec.meshName(name, matches: $0) }) {
                throw ConfigError(mesh.location, "host '\(name)' in connection-mesh is not defined by an 'on' section of resource \(resource.name)")
            }
        }
        return warnings
    }

    private func optionWarnings(_ resource: ResourceSpec) -> [ConfigError] {
        var warnings: [ConfigError] = []
        for setting in resource.sections.disk + (configuration.common?.disk ?? []) where setting.name == "resync-after" {
            if setting.value != "-1", configuration.resource(named: setting.value) == nil {
                warnings.append(ConfigError(setting.location, "resource '\(setting.value)' named in 'resync-after' is not defined"))
            }
        }
        var all: [(String, [OptionSetting])] = [("net", resource.sections.net), ("disk", resource.sections.disk + resource.sections.peerDevice),
                                                ("options", resource.sections.resource), ("startup", resource.sections.startup),
                                                ("handlers", resource.sections.handlers)]
        if let common = configuration.common { all.append(("common net", common.net)); all.append(("common disk", common.disk + common.peerDevice)) }
        for (section, settings) in all {
            var seen: [String: OptionSetting] = [:]
            for setting in settings {
                if let first = seen[setting.name], first.value != setting.value {
                    warnings.append(ConfigError(setting.location, "option '\(setting.name)' is set twice in \(section) of resource \(resource.name) (first at line \(first.location.line)); the last value, \(setting.value), wins"))
                }
                seen[setting.name] = setting
            }
        }
        return warnings
    }
}
