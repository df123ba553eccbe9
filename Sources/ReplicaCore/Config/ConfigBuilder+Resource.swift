import Foundation

extension ConfigBuilder {
    func buildResource(_ statement: ConfigStatement) throws(ConfigError) -> ResourceSpec {
        guard statement.arguments.count == 1 else {
            throw ConfigError(statement.location, "'resource' needs exactly one name before '{'")
        }
        let body = try block(of: statement, arguments: 1)
        try PlainWords.checkName(statement.arguments[0], "resource name")
        var resource = ResourceSpec(name: statement.arguments[0].text, location: statement.location)
        var implicit = VolumeSpec(number: 0, explicit: false, location: statement.location)
        for inner in body {
            if try addVolumeKeyword(inner, to: &implicit) { continue }
            if try addSection(inner, to: &resource.sections, context: "resource \(resource.name)") { continue }
            switch inner.name {
            case "volume":
                let volume = try buildVolume(inner)
                try rejectDuplicateVolume(volume, in: resource.volumes, where: "resource \(resource.name)")
                resource.volumes.append(volume)
            case "on":
                guard !inner.arguments.isEmpty else {
                    throw ConfigError(inner.location, "'on' needs at least one host name before '{'")
                }
                for name in inner.arguments { try PlainWords.checkName(name, "host name") }
                resource.hosts.append(try buildHost(inner, names: inner.arguments.map(\.text), floating: nil))
            case "floating":
                let address = try parseAddress(inner.arguments, at: inner.location)
                resource.hosts.append(try buildHost(inner, names: [], floating: address))
            case "connection":
                resource.connections.append(try buildConnection(inner))
            case "connection-mesh":
                if resource.mesh != nil {
                    throw ConfigError(inner.location, "a second 'connection-mesh' in resource \(resource.name)")
                }
                resource.mesh = try buildMesh(inner)
            case "skip":
                continue
            case "template-file":
                let token = try single(inner, expecting: "a file name")
                let base = (inner.location.file as NSString).deletingLastPathComponent
                let path = token.text.hasPrefix("/") || base.isEmpty ? token.text : base + "/" + token.text
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw ConfigError(token.location, "cannot open template file '\(token.text)'")
                }
            case _ where inner.name.hasPrefix("require-drbd-module-version-"):
                throw ConfigError(inner.location, "'\(inner.name)' checks a DRBD kernel module; Replica runs in user space and has none")
            case "stacked-on-top-of":
                throw ConfigError(inner.location, "'stacked-on-top-of' (stacked DRBD 8.4 resources) is not supported by Replica")
            default:
                throw ConfigError(inner.location, "unknown keyword '\(inner.name)' in resource \(resource.name): expected device, disk, meta-disk, volume, on, floating, connection, connection-mesh, options, net, disk { }, startup, handlers or protocol")
            }
        }
        if implicit.device != nil || implicit.disk != nil || implicit.metaDisk != nil || !implicit.diskOptions.isEmpty {
            try rejectDuplicateVolume(implicit, in: resource.volumes, where: "resource \(resource.name)")
            resource.volumes.insert(implicit, at: 0)
        }
        try assignNodeIDs(&resource)
        return resource
    }

    private func rejectDuplicateVolume(_ volume: VolumeSpec, in volumes: [VolumeSpec], where place: String) throws(ConfigError) {
        if let first = volumes.first(where: { $0.number == volume.number }) {
            throw ConfigError(volume.location, "volume \(volume.number) is defined twice in \(place) (first at line \(first.location.line), column \(first.location.column))")
        }
    }

    /// DRBD 8.4 compatibility: a two-host resource without node-ids gets them from a CRC32C
    /// (seed 0x1a656f21) of each host's address text; the larger hash, compared as a signed
    /// 32-bit number, becomes node 0 (observed with drbdadm 9.22). Not with `connection`
    /// blocks (DRBD 9's form): there drbdadm asks every host for its node-id.
    private func assignNodeIDs(_ resource: inout ResourceSpec) throws(ConfigError) {
        guard resource.hosts.count == 2, resource.hosts.allSatisfy({ $0.nodeID == nil }), resource.connections.isEmpty else { return }
        let hashes = resource.hosts.map { host -> Int32? in
            guard let address = host.effectiveAddress else { return nil }
            return Int32(bitPattern: Array(address.host.utf8).withUnsafeBytes { CRC32C.update(0x1A65_6F21, $0) })
        }
        guard let first = hashes[0], let second = hashes[1] else {
            // Addresses only in connection blocks: number the hosts in written order.
            resource.hosts[0].nodeID = 0
            resource.hosts[1].nodeID = 1
            return
        }
        guard first != second else {
            throw ConfigError(resource.hosts[1].location, "cannot derive node-ids: the two hosts of resource \(resource.name) have the same address (give 'node-id' explicitly or fix the addresses)")
        }
        resource.hosts[0].nodeID = first > second ? 0 : 1
        resource.hosts[1].nodeID = first > second ? 1 : 0
    }

    /// Handles `device`, `disk PATH`, `meta-disk`, `flexible-meta-disk`. Returns false for other keywords.
    func addVolumeKeyword(_ statement: ConfigStatement, to volume: inout VolumeSpec) throws(ConfigError) -> Bool {
        switch statement.name {
        case "device":
            guard statement.block == nil else { throw ConfigError(statement.location, "'device' takes a value, not a block") }
            if volume.device != nil { throw ConfigError(statement.location, "'device' is given twice for volume \(volume.number)") }
            volume.device = try parseDevice(statement)
        case "disk" where statement.block == nil:
            if volume.disk != nil { throw ConfigError(statement.location, "'disk' is given twice for volume \(volume.number)") }
            let token = try single(statement, expecting: "a device path or 'none'")
            try PlainWords.checkName(token, "disk path")
            volume.disk = token.text == "none" ? DiskSpec.none : .path(token.text)
        case "meta-disk", "flexible-meta-disk":
            guard statement.block == nil else { throw ConfigError(statement.location, "'\(statement.name)' takes a value, not a block") }
            if volume.metaDisk != nil { throw ConfigError(statement.location, "'meta-disk' is given twice for volume \(volume.number)") }
            volume.metaDisk = try parseMetaDisk(statement)
        default:
            return false
        }
        return true
    }

    private func parseDevice(_ statement: ConfigStatement) throws(ConfigError) -> DeviceSpec {
        let words = statement.arguments
        if let path = words.first, path.text != "minor" { try PlainWords.checkName(path, "device path") }
        func minorValue(_ token: ConfigToken) throws(ConfigError) -> Int {
            try integer(token, 0...Int(Int32.max), what: "device minor", droppingUnit: true)
        }
        switch words.count {
        case 1:
            let path = words[0].text
            guard let minor = Self.minorFromPath(path) else {
                throw ConfigError(words[0].location, "cannot derive a minor number from device '\(path)': use '/dev/drbdN', 'minor N' or '\(path) minor N'")
            }
            return DeviceSpec(path: path, minor: minor)
        case 2 where words[0].text == "minor":
            return DeviceSpec(path: nil, minor: try minorValue(words[1]))
        case 3 where words[1].text == "minor":
            return DeviceSpec(path: words[0].text, minor: try minorValue(words[2]))
        default:
            throw ConfigError(statement.location, "'device' expects '/dev/drbdN', 'minor N' or 'PATH minor N'")
        }
    }

    /// The minor of `/dev/drbdN`.
    static func minorFromPath(_ path: String) -> Int? {
        guard path.hasPrefix("/dev/drbd") else { return nil }
        let digits = path.dropFirst("/dev/drbd".count)
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber), let minor = Int(digits), minor <= 1_048_575 else { return nil }
        return minor
    }

    private func parseMetaDisk(_ statement: ConfigStatement) throws(ConfigError) -> MetaDiskSpec {
        let words = statement.arguments
        guard let first = words.first else {
            throw ConfigError(statement.location, "'\(statement.name)' expects 'internal', a device path, or 'PATH [INDEX]'")
        }
        if first.text == "internal" {
            guard words.count == 1 else { throw ConfigError(words[1].location, "nothing may follow 'internal'") }
            return .internal
        }
        var path = first.text
        var indexText: String?
        if words.count != 1 || !path.contains("[") { try PlainWords.checkName(first, "meta-disk path") }
        if words.count == 2 {
            indexText = words[1].text
        } else if words.count == 1, let open = path.firstIndex(of: "["), path.hasSuffix("]") {
            indexText = String(path[open...])
            path = String(path[..<open])
        } else if words.count > 2 {
            throw ConfigError(words[2].location, "'\(statement.name)' expects 'internal', a device path, or 'PATH [INDEX]'")
        }
        guard !path.isEmpty else {
            throw ConfigError(first.location, "'\(statement.name)' needs a device path before the index")
        }
        guard let indexText else { return .external(path: path, index: nil) }
        let location = words.count == 2 ? words[1].location : first.location
        if statement.name == "flexible-meta-disk" {
            // A flexible meta-data area has no slots (drbdadm refuses the index too).
            throw ConfigError(location, "'flexible-meta-disk' takes no index: write 'meta-disk \(path) \(indexText)' for an indexed meta-data slot, or leave the index out")
        }
        guard indexText.hasPrefix("["), indexText.hasSuffix("]"), let index = Int(indexText.dropFirst().dropLast()), index >= 0 else {
            throw ConfigError(location, "meta-disk index must be written '[N]' with N ≥ 0, not '\(indexText)'")
        }
        return .external(path: path, index: index)
    }

    func buildVolume(_ statement: ConfigStatement) throws(ConfigError) -> VolumeSpec {
        guard statement.arguments.count == 1 else {
            throw ConfigError(statement.location, "'volume' needs exactly one number before '{'")
        }
        let number = try integer(statement.arguments[0], 0...65534, what: "volume number", droppingUnit: true)
        var volume = VolumeSpec(number: number, explicit: true, location: statement.location)
        for inner in try block(of: statement, arguments: 1) {
            if try addVolumeKeyword(inner, to: &volume) { continue }
            if inner.name == "disk", inner.block != nil {
                for option in try block(of: inner, arguments: 0) {
                    let (_, setting) = try self.option(option, allowed: [.disk, .peerDevice], blockName: "disk")
                    volume.diskOptions.append(setting)
                }
                continue
            }
            if inner.name == "skip" { continue }
            throw ConfigError(inner.location, "unknown keyword '\(inner.name)' in volume \(number): expected device, disk, meta-disk or disk { }")
        }
        return volume
    }

    private func buildHost(_ statement: ConfigStatement, names: [String], floating: NetworkAddress?) throws(ConfigError) -> HostSpec {
        // `floating ADDRESS;` without a block is DRBD 8.4's short form (its manual's example).
        guard let body = statement.block ?? (floating != nil ? [] : nil) else {
            throw ConfigError(statement.location, "'\(statement.name)' needs a block: expected '{'")
        }
        var host = HostSpec(names: names, floatingAddress: floating, location: statement.location)
        var implicit = VolumeSpec(number: 0, explicit: false, location: statement.location)
        for inner in body {
            if try addVolumeKeyword(inner, to: &implicit) { continue }
            switch inner.name {
            case "node-id":
                host.nodeID = try integer(try single(inner, expecting: "a number"), 0...31, what: "node-id")
            case "address":
                if floating != nil { throw ConfigError(inner.location, "a 'floating' section already names its address") }
                if host.address != nil { throw ConfigError(inner.location, "'address' is given twice in \(host.label)") }
                host.address = try parseAddress(inner.arguments, at: inner.location)
            case "nbd-address":
                if host.nbdAddress != nil { throw ConfigError(inner.location, "'nbd-address' is given twice in \(host.label)") }
                host.nbdAddress = try parseAddress(inner.arguments, at: inner.location)
            case "nbd-tls":
                let mode = try single(inner, expecting: "off, on or require")
                guard ["off", "on", "require"].contains(mode.text) else {
                    throw ConfigError(mode.location, "nbd-tls '\(mode.text)': expected off, on or require")
                }
                if host.nbdTLS?.mode.isEmpty == false { throw ConfigError(inner.location, "'nbd-tls' is given twice in \(host.label)") }
                var tls = host.nbdTLS ?? NBDTLSSpec(mode: "", certificates: nil, location: inner.location)
                tls.mode = mode.text
                tls.location = inner.location
                host.nbdTLS = tls
            case "nbd-tls-certificates", "nbd-tls-psk":
                let path = try single(inner, expecting: inner.name == "nbd-tls-psk" ? "a file" : "a directory")
                var tls = host.nbdTLS ?? NBDTLSSpec(mode: "", certificates: nil, location: inner.location)
                if (inner.name == "nbd-tls-psk" ? tls.preSharedKeys : tls.certificates) != nil {
                    throw ConfigError(inner.location, "'\(inner.name)' is given twice in \(host.label)")
                }
                if inner.name == "nbd-tls-psk" { tls.preSharedKeys = path.text } else { tls.certificates = path.text }
                if tls.certificates != nil, tls.preSharedKeys != nil {
                    throw ConfigError(inner.location, "nbd-tls-certificates and nbd-tls-psk in \(host.label): an export authenticates with one of them")
                }
                host.nbdTLS = tls
            case "metrics-address":
                if host.metricsAddress != nil { throw ConfigError(inner.location, "'metrics-address' is given twice in \(host.label)") }
                host.metricsAddress = try parseAddress(inner.arguments, at: inner.location)
            case "volume":
                let volume = try buildVolume(inner)
                try rejectDuplicateVolume(volume, in: host.volumes, where: host.label)
                host.volumes.append(volume)
            case "skip":
                continue
            default:
                throw ConfigError(inner.location, "unknown keyword '\(inner.name)' in \(host.label): expected disk, device, address, meta-disk, node-id, volume, nbd-address, nbd-tls, nbd-tls-certificates, nbd-tls-psk or metrics-address")
            }
        }
        if let tls = host.nbdTLS {
            if tls.mode.isEmpty {
                throw ConfigError(tls.location, "\(tls.preSharedKeys != nil ? "nbd-tls-psk" : "nbd-tls-certificates") without nbd-tls in \(host.label): say nbd-tls on; or nbd-tls require;")
            }
            if tls.mode != "off", tls.certificates == nil, tls.preSharedKeys == nil {
                throw ConfigError(tls.location, "nbd-tls \(tls.mode) without nbd-tls-certificates or nbd-tls-psk in \(host.label): the export has no certificate or keys")
            }
            if tls.mode != "off", host.nbdAddress == nil {
                throw ConfigError(tls.location, "nbd-tls \(tls.mode) without nbd-address in \(host.label): TLS applies to the TCP export (the Unix socket export is guarded by its file permissions)")
            }
        }
        if implicit.device != nil || implicit.disk != nil || implicit.metaDisk != nil {
            try rejectDuplicateVolume(implicit, in: host.volumes, where: host.label)
            host.volumes.insert(implicit, at: 0)
        }
        return host
    }

    /// `[AF] IP:PORT` with AF one of ipv4, ipv6, ssocks, sdp, ib (default ipv4).
    /// An address given on the command line (`--metrics-address 127.0.0.1:9942`,
    /// `[::1]:9942`), checked as the resource file's are; errors name `option`.
    public static func commandLineAddress(_ text: String, option: String) throws(ConfigError) -> NetworkAddress {
        let location = SourceLocation(file: "command line \(option)", line: 1, column: 1)
        let family = text.hasPrefix("[") ? "ipv6" : "ipv4"
        let words = [ConfigToken(kind: .word, text: family, quoted: false, location: location),
                     ConfigToken(kind: .word, text: text, quoted: false, location: location)]
        return try ConfigBuilder().parseAddress(words, at: location)
    }

    func parseAddress(_ words: [ConfigToken], at location: SourceLocation) throws(ConfigError) -> NetworkAddress {
        let families = ["ipv4", "ipv6", "ssocks", "sdp", "ib"]
        var family = "ipv4"
        var rest = words[...]
        if let first = rest.first, families.contains(first.text) {
            family = first.text
            rest = rest.dropFirst()
        }
        guard rest.count == 1, let token = rest.first else {
            throw ConfigError(words.first?.location ?? location, "an address is written '[ipv4|ipv6] IP:PORT'")
        }
        let text = token.text
        guard let colon = text.lastIndex(of: ":") else {
            throw ConfigError(token.location, "address '\(text)' has no ':PORT'")
        }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw ConfigError(token.location, "port in '\(text)' must be a number in 1..65535")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let valid = family == "ipv6" ? Self.isIPv6(host) : Self.isIPv4(host)
        guard valid else {
            throw ConfigError(token.location, "'\(host)' is not a valid \(family == "ipv6" ? "IPv6" : "IPv4") address")
        }
        return NetworkAddress(family: family, host: host, port: port)
    }

    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        // drbdadm accepts any four dotted groups of digits; binding refuses impossible ones later.
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) }
    }

    /// An IPv6 address, with the zone of a link-local one (`fe80::1%eth0`, an interface name
    /// or number) as drbdadm accepts it.
    static func isIPv6(_ text: String) -> Bool {
        let parts = text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
        let address = parts[0]
        guard !address.isEmpty, address.contains(":") else { return false }
        let allowed = Set("0123456789abcdefABCDEF:.")
        guard address.allSatisfy({ allowed.contains($0) }), address.components(separatedBy: "::").count <= 2 else { return false }
        guard parts.count == 2 else { return true }
        // Linux interface names: at most 15 characters, no '/', ':' or space.
        let zone = parts[1]
        return !zone.isEmpty && zone.count <= 15 && zone.allSatisfy { $0.isLetter || $0.isNumber || "._-@".contains($0) }
    }
}
