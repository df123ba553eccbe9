import Foundation

/// Prints a ``Configuration`` in the normalized form of `drbdadm dump`: explicit address
/// families, node-ids, minors, DRBD's section order, values aligned in columns.
public struct ConfigDumper {
    /// The name of this node, for the `# resource R on NODE: ignored` comment.
    public var nodeName: String

    /// Creates a dumper for the node `nodeName`.
    public init(nodeName: String) { self.nodeName = nodeName }

    /// The whole configuration, or only the resources in `only` (in configuration order).
    public func dump(_ configuration: Configuration, only: [String]? = nil) -> String {
        var dumper = self
        dumper.resourcesOnThisNode = Set(configuration.resources.filter { $0.hosts.contains { $0.names.contains(nodeName) } }.map(\.name))
        return dumper.dumpAll(configuration, only: only)
    }

    /// Resources with an `on` section for this node: `resync-after` may only name those
    /// (drbdadm drops it otherwise, with a warning).
    private var resourcesOnThisNode: Set<String> = []

    private func dumpAll(_ configuration: Configuration, only: [String]?) -> String {
        var out = ""
        if only == nil {
            out += "# \(configuration.file)\n"
            if let global = configuration.global { out += dumpGlobal(global) }
            if let common = configuration.common {
                out += "common {\n"
                out += dumpSections(common, indent: 4, inCommon: true)
                out += "}\n\n"
            }
        }
        for resource in configuration.resources where only?.contains(resource.name) ?? true {
            out += dumpResource(resource)
        }
        return out
    }

    private func dumpGlobal(_ global: GlobalSpec) -> String {
        var lines: [String] = []
        if global.disableIPVerification { lines.append("disable-ip-verification;") }
        if let minorCount = global.minorCount { lines.append("minor-count \(minorCount);") }
        if let refresh = global.dialogRefresh, refresh != 1 { lines.append("dialog-refresh \(refresh);") }
        if let usage = global.usageCount, usage != "ask" { lines.append("usage-count \(usage);") }
        guard !lines.isEmpty else { return "" }
        return "global {\n" + lines.map { "    \($0)\n" }.joined() + "}\n\n"
    }

    /// `key value;` with the value starting at column 25 and right-aligned in three characters.
    static func line(_ indent: Int, _ key: String, _ value: String, raw: Bool = false) -> String {
        var text = String(repeating: " ", count: indent) + key
        if text.count < 24 { text += String(repeating: " ", count: 24 - text.count) }
        let shown = raw ? value : quoted(value)
        // drbdadm right-aligns in three bytes (printf's %3s), not characters.
        let width = shown.utf8.count
        let padded = width < 3 ? String(repeating: " ", count: 3 - width) + shown : shown
        return text + " " + padded + ";\n"
    }

    /// Quotes a value as drbdadm does: unless it could be written as an unquoted word — not
    /// empty, and only ASCII letters, digits and `/ . _ -` (the lexer's word characters) —
    /// it keeps its quotes (`"x+y"`, `"E:"`, `"é"`, `"a b"`).
    static func quoted(_ value: String) -> String {
        let special = value.isEmpty || !value.unicodeScalars.allSatisfy(isWordCharacter)
        guard special else { return value }
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(escaped)\""
    }

    /// A character an unquoted word may hold.
    private static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "/", ".", "_", "-": true
        default: false
        }
    }

    private static func pad(_ indent: Int) -> String { String(repeating: " ", count: indent) }

    /// A key drbdadm pads to 16 characters after the indentation (`floating`, external
    /// `meta-disk`, a proxy path's `inside`/`outside`), where `line` pads to column 25.
    private static func shortKey(_ key: String) -> String { key.padding(toLength: 16, withPad: " ", startingAt: 0) }

    /// A section with its settings, then `flags` written bare (drbdadm prints `stacked-timeouts;`
    /// last, and only in a section that has settings besides).
    func dumpSection(_ name: String, _ settings: [OptionSetting], indent: Int, flags: [String] = []) -> String {
        guard !settings.isEmpty else { return "" }
        var out = Self.pad(indent) + "\(name) {\n"
        for setting in settings {
            guard let lines = setting.blockLines else {
                out += Self.line(indent + 4, setting.name, setting.value)
                continue
            }
            out += Self.pad(indent + 4) + "\(setting.name) {\n"
            for line in lines { out += Self.pad(indent + 8) + line + ";\n" }
            out += Self.pad(indent + 4) + "}\n"
        }
        for flag in flags { out += Self.pad(indent + 4) + flag + ";\n" }
        return out + Self.pad(indent) + "}\n"
    }

    /// The option sections. A resource's `resync-after` naming no resource of this node is left
    /// out, as drbdadm leaves it out; in `common` it is printed as written (drbdadm 9.22).
    func dumpSections(_ sections: OptionSections, indent: Int, inCommon: Bool = false) -> String {
        var out = dumpSection("options", sections.resource, indent: indent)
        out += dumpSection("net", sections.net, indent: indent)
        let disk = sections.disk.filter { inCommon || $0.name != "resync-after" || $0.value == "-1" || resourcesOnThisNode.contains($0.value) }
        out += dumpSection("disk", disk + sections.peerDevice, indent: indent)
        let startupFlags = sections.notDumped.contains { $0.setting.name == "stacked-timeouts" } ? ["stacked-timeouts"] : []
        out += dumpSection("startup", sections.startup, indent: indent, flags: startupFlags)
        out += dumpSection("proxy", sections.proxy, indent: indent)
        out += dumpSection("handlers", sections.handlers, indent: indent)
        return out
    }

    private func dumpVolumeBody(_ volume: VolumeSpec, indent: Int) -> String {
        var out = ""
        if let device = volume.device {
            let value = device.path.map { "\($0) minor \(device.minor)" } ?? "minor \(device.minor)"
            out += Self.line(indent, "device", value, raw: true)
        }
        switch volume.disk {
        case .none?: out += Self.line(indent, "disk", "none", raw: true)
        case .path(let path)?: out += Self.line(indent, "disk", path, raw: true)
        case nil: break
        }
        switch volume.metaDisk {
        case .internal?: out += Self.line(indent, "meta-disk", "internal", raw: true)
        case .external(let path, let index)?:
            // drbdadm pads this keyword to 16 columns regardless of indentation.
            out += Self.pad(indent) + Self.shortKey("meta-disk") + " "
                + (index.map { "\(path) [\($0)]" } ?? path) + ";\n"
        case nil: break
        }
        return out
    }

    private func dumpVolumes(_ volumes: [VolumeSpec], indent: Int) -> String {
        var out = ""
        for volume in volumes.sorted(by: { $0.number < $1.number }) {
            if volume.explicit {
                out += Self.pad(indent) + "volume \(volume.number) {\n"
                out += dumpSection("disk", volume.diskOptions, indent: indent + 4)
                out += dumpVolumeBody(volume, indent: indent + 4)
                out += Self.pad(indent) + "}\n"
            } else {
                out += dumpVolumeBody(volume, indent: indent)
            }
        }
        return out
    }

    /// `host NAME address ADDR;` in a `connection` or `path`: drbdadm writes the name, then
    /// one space more than the line's indentation (not padding to a column: names of any
    /// length get the same run).
    private func hostLine(_ host: ConnectionHost, indent: Int) -> String {
        let head = "host \(host.name)"
        var text = Self.pad(indent) + head
        if let address = host.address {
            text += String(repeating: " ", count: indent + 1)
            text += "address" + String(repeating: " ", count: 9) + address.description
        }
        if let port = host.port { text += " port \(port)" }
        guard let proxy = host.proxy else { return text + ";\n" }
        text += String(repeating: " ", count: 9) + "via proxy on \(proxy.hosts.joined(separator: " ")) {\n"
        if let inside = proxy.inside { text += Self.pad(indent + 4) + Self.shortKey("inside") + " \(inside);\n" }
        if let outside = proxy.outside { text += Self.pad(indent + 4) + Self.shortKey("outside") + " \(outside);\n" }
        return text + Self.pad(indent) + "}\n"
    }

    private func dumpResource(_ resource: ResourceSpec) -> String {
        let ours = resource.hosts.contains { $0.names.contains(nodeName) }
        var out = "# resource \(resource.name) on \(nodeName): \(ours ? "not ignored" : "ignored"), not stacked\n"
        out += "# defined at \(resource.location.file):\(resource.location.line)\n"
        out += "resource \(Self.quoted(resource.name)) {\n"
        out += dumpVolumes(resource.volumes, indent: 4)
        for host in resource.hosts {
            if let floating = host.floatingAddress {
                out += "    " + Self.shortKey("floating") + " \(floating) {\n"
            } else {
                out += "    on \(host.names.joined(separator: " ")) {\n"
            }
            if let nodeID = host.nodeID { out += "        node-id \(nodeID);\n" }
            out += dumpVolumes(host.volumes, indent: 8)
            if let address = host.address { out += Self.line(8, "address", address.description, raw: true) }
            if let nbd = host.nbdAddress { out += Self.line(8, "nbd-address", nbd.description, raw: true) }
            if let tls = host.nbdTLS {
                out += Self.line(8, "nbd-tls", tls.mode, raw: true)
                if let directory = tls.certificates { out += Self.line(8, "nbd-tls-certificates", directory) }
                if let file = tls.preSharedKeys { out += Self.line(8, "nbd-tls-psk", file) }
            }
            if let metrics = host.metricsAddress { out += Self.line(8, "metrics-address", metrics.description, raw: true) }
            out += "    }\n"
        }
        for connection in resource.connections {
            out += "    connection {\n"  // drbdadm 9.22 does not print connection names
            for host in connection.hosts { out += hostLine(host, indent: 8) }
            for path in connection.paths {
                out += "        path {\n"
                for host in path { out += hostLine(host, indent: 12) }
                out += "        }\n"
            }
            out += dumpSections(connection.sections, indent: 8)
            out += "    }\n"
        }
        if let mesh = resource.mesh {
            out += "    connection-mesh {\n"
            out += "        hosts \(mesh.hosts.joined(separator: " "));\n"
            out += dumpSections(mesh.sections, indent: 8)
            out += "    }\n"
        }
        out += dumpSections(resource.sections, indent: 4)
        return out + "}\n\n"
    }
}
