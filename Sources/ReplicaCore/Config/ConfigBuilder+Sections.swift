extension ConfigBuilder {
    /// Adds `options`, `net`, `disk { }`, `startup`, `handlers`, `proxy`, legacy `syncer` and
    /// legacy `protocol X;` to `sections`. Returns false when the statement is none of those.
    @discardableResult
    func addSection(_ statement: ConfigStatement, to sections: inout OptionSections, context: String) throws(ConfigError) -> Bool {
        let blocks: Set<String> = ["options", "net", "disk", "startup", "handlers", "proxy", "syncer"]
        if statement.block != nil, blocks.contains(statement.name) {
            if let first = sections.blockLocations[statement.name] {
                throw ConfigError(statement.location, "a second '\(statement.name)' section in \(context) (the first is at line \(first.line), column \(first.column)); merge them")
            }
            sections.blockLocations[statement.name] = statement.location
        }
        switch statement.name {
        case "options":
            try addOptions(statement, allowed: [.resource], to: &sections)
        case "net":
            try addOptions(statement, allowed: [.net], to: &sections)
        case "disk" where statement.block != nil:
            try addOptions(statement, allowed: [.disk, .peerDevice], to: &sections)
        case "startup":
            try addOptions(statement, allowed: [.startup], to: &sections)
        case "handlers":
            try addOptions(statement, allowed: [.handlers], to: &sections)
        case "proxy":
            try addOptions(statement, allowed: [.proxy], to: &sections)
        case "syncer":
            try addSyncer(statement, to: &sections)
        case "protocol" where statement.block == nil:
            let token = try single(statement, expecting: "A, B or C")
            try PlainWords.checkValue(token, "protocol")
            let definition = OptionTable.definition("protocol", in: .net)!
            let value = try checked(definition, token)
            // Among the net options in reading order, as drbdadm 9.22 prints it.
            sections.net.append(OptionSetting(name: "protocol", value: value, location: statement.location))
        default:
            return false
        }
        return true
    }

    private func checked(_ definition: OptionDefinition, _ token: ConfigToken) throws(ConfigError) -> String {
        switch OptionValueParser.check(definition, value: token.text) {
        case .success(let value): return value
        case .failure(let error): throw ConfigError(token.location, error.message)
        }
    }

    /// Parses one `keyword [value];` option statement against the sections allowed here.
    func option(_ statement: ConfigStatement, allowed: [OptionSection], blockName: String) throws(ConfigError) -> (OptionDefinition, OptionSetting) {
        func lookup(_ name: String) -> OptionDefinition? {
            for section in allowed { if let d = OptionTable.definition(name, in: section) { return d } }
            return nil
        }
        if let body = statement.block, statement.name == "plugin", statement.arguments.isEmpty, let definition = lookup("plugin") {
            // DRBD Proxy's plugins: one statement of words per plugin, kept for the dump.
            var lines: [String] = []
            for line in body {
                guard line.block == nil else { throw ConfigError(line.location, "a plugin line in 'plugin { }' takes no block") }
                lines.append(([line.name] + line.arguments.map(\.text)).joined(separator: " "))
            }
            return (definition, OptionSetting(name: "plugin", value: "", location: statement.location, blockLines: lines))
        }
        guard statement.block == nil else {
            throw ConfigError(statement.location, "'\(statement.name)' in \(blockName) takes a value, not a block")
        }
        var name = statement.name
        var definition = lookup(name)
        var impliedValue: String?
        if definition == nil, name.hasPrefix("no-"), let negated = lookup(String(name.dropFirst(3))), negated.kind == .boolean {
            definition = negated
            name = negated.name
            impliedValue = "no"
        }
        guard let definition else {
            throw ConfigError(statement.location, "unknown option '\(statement.name)' in \(blockName) section: expected one of \(OptionTable.names(in: allowed).joined(separator: ", "))")
        }
        let value: String
        if let impliedValue {
            guard statement.arguments.isEmpty else {
                throw ConfigError(statement.arguments[0].location, "'\(statement.name)' takes no value")
            }
            value = impliedValue
        } else if statement.arguments.isEmpty {
            guard definition.kind == .boolean else {
                throw ConfigError(statement.location, "option '\(name)' needs a value")
            }
            value = "yes"
        } else {
            guard statement.arguments.count == 1 else {
                throw ConfigError(statement.arguments[1].location, "option '\(name)' takes one value; put text with spaces in double quotes")
            }
            try PlainWords.checkValue(statement.arguments[0], "value of '\(name)'")
            value = try checked(definition, statement.arguments[0])
        }
        return (definition, OptionSetting(name: name, value: value, location: statement.location))
    }

    func addOptions(_ statement: ConfigStatement, allowed: [OptionSection], to sections: inout OptionSections) throws(ConfigError) {
        for inner in try block(of: statement, arguments: 0) {
            let (definition, setting) = try option(inner, allowed: allowed, blockName: statement.name)
            if definition.name == "become-primary-on" {
                // DRBD 8.4 only; drbdadm 9 drops it from its dump. Kept apart for `up` to refuse.
                sections.notDumped.append((definition.section, setting))
                continue
            }
            if definition.name == "stacked-timeouts" {
                // A flag to drbdadm: written bare or not at all (a value is a parse error
                // there), dumped bare after the section's other options (and not at all when
                // it is alone). Kept apart for `up` to refuse.
                if let value = inner.arguments.first {
                    throw ConfigError(value.location, "'stacked-timeouts' is a flag and takes no value: write 'stacked-timeouts;' or leave it out")
                }
                sections.notDumped.append((definition.section, setting))
                continue
            }
            let section = definition.section
            sections.append(setting, to: section)
        }
    }

    /// DRBD 8.4's `syncer { }`: each option moves to the section that owns it today.
    private func addSyncer(_ statement: ConfigStatement, to sections: inout OptionSections) throws(ConfigError) {
        let moved: [String: OptionSection] = [
            "al-extents": .disk, "verify-alg": .net, "csums-alg": .net, "use-rle": .net,
            "cpu-mask": .resource, "on-no-data-accessible": .resource,
        ]
        for inner in try block(of: statement, arguments: 0) {
            if inner.name == "after" || inner.name == "resync-after" {
                let name = try single(inner, expecting: "a resource name")
                // drbdadm 9 drops it from its dump; kept apart for `up` to refuse.
                sections.notDumped.append((.disk, OptionSetting(name: "resync-after", value: name.text, location: inner.location)))
                continue
            }
            guard let section = moved[inner.name] else {
                throw ConfigError(inner.location, "unknown option '\(inner.name)' in syncer section: expected one of \(moved.keys.sorted().joined(separator: ", ")), after")
            }
            let (_, setting) = try option(inner, allowed: [section], blockName: "syncer")
            sections.append(setting, to: section)
        }
    }
}
