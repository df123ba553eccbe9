extension ConfigBuilder {
    func buildConnection(_ statement: ConfigStatement) throws(ConfigError) -> ConnectionSpec {
        guard statement.arguments.count <= 1, let body = statement.block else {
            throw ConfigError(statement.location, "'connection' is written 'connection [NAME] { ... }'")
        }
        if let name = statement.arguments.first { try PlainWords.checkName(name, "connection name") }
        var connection = ConnectionSpec(name: statement.arguments.first?.text, location: statement.location)
        for inner in body {
            switch inner.name {
            case "host":
                connection.hosts.append(try connectionHost(inner))
            case "path":
                var hosts: [ConnectionHost] = []
                for line in try block(of: inner, arguments: 0) {
                    guard line.name == "host" else {
                        throw ConfigError(line.location, "unknown keyword '\(line.name)' in path: expected host")
                    }
                    hosts.append(try connectionHost(line))
                }
                guard hosts.count == 2 else {
                    throw ConfigError(inner.location, "a path names exactly two hosts, this one names \(hosts.count)")
                }
                connection.paths.append(hosts)
            case "net", "disk":
                guard inner.block != nil else {
                    throw ConfigError(inner.location, "'\(inner.name)' in a connection needs a block")
                }
                try addSection(inner, to: &connection.sections, context: "connection")
            case "volume":
                _ = try block(of: inner, arguments: 1)
            case "skip":
                continue
            default:
                throw ConfigError(inner.location, "unknown keyword '\(inner.name)' in connection: expected host, path, net, disk or volume")
            }
        }
        if !connection.hosts.isEmpty, connection.hosts.count != 2 {
            throw ConfigError(statement.location, "a connection names exactly two hosts, this one names \(connection.hosts.count)")
        }
        return connection
    }

    private func connectionHost(_ statement: ConfigStatement) throws(ConfigError) -> ConnectionHost {
        guard let name = statement.arguments.first else {
            throw ConfigError(statement.location, "'host' is written 'host NAME [address [AF] IP:PORT] [port P] [via proxy on NAME... { inside ...; outside ...; }];'")
        }
        try PlainWords.checkName(name, "host name")
        var host = ConnectionHost(name: name.text, location: statement.location)
        var rest = Array(statement.arguments.dropFirst())
        if let via = rest.firstIndex(where: { $0.text == "via" }) {
            host.proxy = try proxyRoute(Array(rest[via...]), block: statement.block, at: statement.location)
            rest.removeSubrange(via...)
        } else if statement.block != nil {
            throw ConfigError(statement.location, "a 'host' line takes a block only after 'via proxy on NAME'")
        }
        if rest.first?.text == "address" {
            var words: [ConfigToken] = []
            rest.removeFirst()
            while let word = rest.first, word.text != "port" {
                words.append(word)
                rest.removeFirst()
            }
            host.address = try parseAddress(words, at: statement.location)
        }
        if rest.first?.text == "port", rest.count == 2 {
            host.port = try integer(rest[1], 1...65535, what: "port")
            rest.removeAll()
        }
        guard rest.isEmpty else {
            throw ConfigError(rest[0].location, "unexpected '\(rest[0].text)' in host line: expected 'address' or 'port'")
        }
        return host
    }

    /// `via proxy on NAME... { inside [AF] IP:PORT; outside [AF] IP:PORT; }` (DRBD Proxy).
    private func proxyRoute(_ words: [ConfigToken], block: [ConfigStatement]?, at location: SourceLocation) throws(ConfigError) -> ProxyRoute {
        guard words.count >= 4, words[1].text == "proxy", words[2].text == "on" else {
            throw ConfigError(words[0].location, "a proxy path is written 'via proxy on NAME { inside ADDRESS; outside ADDRESS; }'")
        }
        for name in words[3...] { try PlainWords.checkName(name, "proxy host name") }
        guard let block else { throw ConfigError(words[0].location, "'via proxy on \(words[3].text)' needs a block with 'inside' and 'outside'") }
        var route = ProxyRoute(hosts: words[3...].map(\.text), location: words[0].location)
        for line in block {
            guard line.block == nil else { throw ConfigError(line.location, "'\(line.name)' takes an address, not a block") }
            switch line.name {
            case "inside": route.inside = try parseAddress(line.arguments, at: line.location)
            case "outside": route.outside = try parseAddress(line.arguments, at: line.location)
            default: throw ConfigError(line.location, "unknown keyword '\(line.name)' in a proxy path: expected inside or outside")
            }
        }
        return route
    }

    func buildMesh(_ statement: ConfigStatement) throws(ConfigError) -> ConnectionMeshSpec {
        var mesh = ConnectionMeshSpec(hosts: [], location: statement.location)
        for inner in try block(of: statement, arguments: 0) {
            switch inner.name {
            case "hosts":
                guard inner.block == nil, inner.arguments.count >= 2 else {
                    throw ConfigError(inner.location, "'hosts' names at least two hosts")
                }
                for name in inner.arguments { try PlainWords.checkName(name, "host name") }
                mesh.hosts = inner.arguments.map(\.text)
            case "net", "disk":
                try addSection(inner, to: &mesh.sections, context: "connection-mesh")
            default:
                throw ConfigError(inner.location, "unknown keyword '\(inner.name)' in connection-mesh: expected hosts or net")
            }
        }
        guard !mesh.hosts.isEmpty else {
            throw ConfigError(statement.location, "connection-mesh without a 'hosts' line")
        }
        return mesh
    }
}
