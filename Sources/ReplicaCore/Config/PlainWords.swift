/// drbdadm's lexical rules for unquoted words in value and name positions: only letters,
/// digits, `/`, `.`, `_` and `-`; and its keywords cannot name a resource, host or device
/// unless quoted.
enum PlainWords {
    /// Words drbdadm's scanner turns into keyword tokens.
    static let reserved: Set<String> = [
        "global", "common", "resource", "on", "floating", "device", "disk", "meta-disk", "flexible-meta-disk",
        "address", "node-id", "volume", "connection", "connection-mesh", "path", "host", "hosts", "startup",
        "options", "net", "syncer", "handlers", "proxy", "include", "skip", "minor", "template-file", "port",
        "yes", "no", "ask", "ipv4", "ipv6", "ssocks", "sdp", "usage-count", "stacked-on-top-of",
        "disable-ip-verification", "minor-count", "dialog-refresh", "udev-always-use-vnr", "cmd-timeout-short",
        "cmd-timeout-medium", "cmd-timeout-long", "_this_host", "_remote_host", "outside", "inside", "via",
    ]

    private static func allowed(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "/" || c == "." || c == "_" || c == "-"
    }

    /// Checks an option value or path.
    static func checkValue(_ token: ConfigToken, _ what: String) throws(ConfigError) {
        guard !token.quoted else { return }
        if let bad = token.text.unicodeScalars.first(where: { !allowed($0) }) {
            throw ConfigError(token.location, "\(what) '\(token.text)' contains '\(bad)': unquoted words may only contain letters, digits, '/', '.', '_' and '-'; put it in double quotes")
        }
    }

    /// Checks a name (resource, host, connection) or a device/disk path.
    static func checkName(_ token: ConfigToken, _ what: String) throws(ConfigError) {
        try checkValue(token, what)
        guard !token.quoted else { return }
        if reserved.contains(token.text) || token.text.hasPrefix("require-drbd-module-version-") {
            throw ConfigError(token.location, "'\(token.text)' is a keyword and cannot be used as a \(what) here; put it in double quotes")
        }
        var digits = Substring(token.text)
        if let last = digits.last, "kKmMgGsS".contains(last) { digits = digits.dropLast() }
        if !digits.isEmpty, digits.allSatisfy(\.isNumber) {
            throw ConfigError(token.location, "'\(token.text)' is a number and cannot be used as a \(what); put it in double quotes")
        }
    }
}
