/// Gives meaning to a parsed configuration: checks every keyword against DRBD's grammar and
/// option tables and builds a ``Configuration``. The first problem stops the build with a
/// ``ConfigError``; there is never a partial result.
public struct ConfigBuilder {
    /// Creates a builder.
    public init() {}

    /// Reads `path` (and its includes), checks it and returns the configuration.
    public static func load(path: String) throws(ConfigError) -> Configuration {
        try firstInReadingOrder(file: path) { reader throws(ConfigError) in try reader.read(path: path) }
    }

    /// Parses and checks configuration text as if read from `file`.
    public static func load(text: String, file: String) throws(ConfigError) -> Configuration {
        try firstInReadingOrder(file: file) { reader throws(ConfigError) in try reader.parse(text: text, file: file) }
    }

    /// Reads with `read` and builds; where the file has a syntax error, a problem in the
    /// statements completed before it is reported instead: the first error in reading order,
    /// as drbdadm's one-pass parser reports it.
    private static func firstInReadingOrder(file: String, _ read: (ConfigSyntaxReader) throws(ConfigError) -> [ConfigStatement]) throws(ConfigError) -> Configuration {
        let prefix = ConfigSyntaxReader.Prefix()
        let statements: [ConfigStatement]
        do {
            statements = try read(ConfigSyntaxReader(keeping: prefix))
        } catch {
            do {
                _ = try ConfigBuilder().build(prefix.statements, file: file, validating: false)
            } catch let earlier {
                throw earlier
            }
            throw error
        }
        return try ConfigBuilder().build(statements, file: file)
    }

    /// Builds and checks a configuration from statements (`validating`: with the checks across
    /// resources that need the whole file).
    public func build(_ statements: [ConfigStatement], file: String, validating: Bool = true) throws(ConfigError) -> Configuration {
        var configuration = Configuration(file: file)
        for statement in statements {
            switch statement.name {
            case "global":
                if let previous = configuration.global {
                    throw ConfigError(statement.location, "a second 'global' section (the first is at line \(previous.location.line) of \(previous.location.file))")
                }
                configuration.global = try buildGlobal(statement)
            case "common":
                if configuration.common != nil {
                    throw ConfigError(statement.location, "a second 'common' section; there can be only one")
                }
                var sections = OptionSections()
                for inner in try block(of: statement, arguments: 0) where try !addSection(inner, to: &sections, context: "common") {
                    throw ConfigError(inner.location, "unknown keyword '\(inner.name)' in common: expected options, net, disk, startup, handlers, proxy, syncer or protocol")
                }
                configuration.common = sections
            case "resource":
                let resource = try buildResource(statement)
                if let previous = configuration.resources.first(where: { $0.name == resource.name }) {
                    throw ConfigError(statement.location, "resource '\(resource.name)' is defined twice (first at \(previous.location))")
                }
                configuration.resources.append(resource)
            case "skip":
                continue
            case _ where statement.name.hasPrefix("require-drbd-module-version-"):
                throw ConfigError(statement.location, "'\(statement.name)' checks a DRBD kernel module; Replica runs in user space and has none")
            default:
                throw ConfigError(statement.location, "unknown keyword '\(statement.name)': expected global, common, resource, skip or include")
            }
        }
        if validating { configuration.warnings = try ConfigValidator(configuration).validate() }
        return configuration
    }

    // MARK: - Helpers

    func block(of statement: ConfigStatement, arguments count: Int) throws(ConfigError) -> [ConfigStatement] {
        guard let block = statement.block else {
            throw ConfigError(statement.location, "'\(statement.name)' needs a block: expected '{' after it")
        }
        guard statement.arguments.count == count else {
            let extra = statement.arguments.count > count ? statement.arguments[count] : statement.keyword
            throw ConfigError(extra.location, "'\(statement.name)' takes \(count == 0 ? "no" : "\(count)") argument\(count == 1 ? "" : "s") before '{'")
        }
        return block
    }

    func single(_ statement: ConfigStatement, expecting what: String) throws(ConfigError) -> ConfigToken {
        guard statement.block == nil else {
            throw ConfigError(statement.location, "'\(statement.name)' takes a value, not a block")
        }
        guard statement.arguments.count == 1 else {
            let at = statement.arguments.count > 1 ? statement.arguments[1].location : statement.location
            throw ConfigError(at, "'\(statement.name)' takes exactly one value: \(what)")
        }
        return statement.arguments[0]
    }

    /// `token` as a number in `range`. With `droppingUnit`, a number written with one of the
    /// unit letters drbdadm's lexer takes for an integer (`K`, `M`, `G`, `s`) is the number
    /// without it, as drbdadm reads a device minor and a volume number (`minor 1840M` is minor
    /// 1840 there; a node-id or a size applies the unit instead).
    func integer(_ token: ConfigToken, _ range: ClosedRange<Int>, what: String, droppingUnit: Bool = false) throws(ConfigError) -> Int {
        var text = Substring(token.text)
        if droppingUnit, text.count > 1, let last = text.last, "KMGs".contains(last) {
            text = text.dropLast()
        }
        guard text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text), range.contains(value) else {
            throw ConfigError(token.location, "\(what) must be a number in \(range.lowerBound)..\(range.upperBound), not '\(token.text)'")
        }
        return value
    }

    // MARK: - global

    func buildGlobal(_ statement: ConfigStatement) throws(ConfigError) -> GlobalSpec {
        var global = GlobalSpec(location: statement.location)
        for inner in try block(of: statement, arguments: 0) {
            switch inner.name {
            case "disable-ip-verification":
                global.disableIPVerification = true
            case "udev-always-use-vnr":
                global.udevAlwaysUseVNR = true
            case "minor-count":
                global.minorCount = try integer(try single(inner, expecting: "a number"), 1...1_048_575, what: "minor-count")
            case "dialog-refresh":
                global.dialogRefresh = try integer(try single(inner, expecting: "a number"), 0...600, what: "dialog-refresh")
            case "usage-count":
                let token = try single(inner, expecting: "yes, no or ask")
                guard ["yes", "no", "ask"].contains(token.text) else {
                    throw ConfigError(token.location, "usage-count takes yes, no or ask, not '\(token.text)'")
                }
                global.usageCount = token.text
            case "cmd-timeout-short", "cmd-timeout-medium", "cmd-timeout-long":
                _ = try integer(try single(inner, expecting: "a number"), 0...2_147_483_647, what: inner.name)
            default:
                throw ConfigError(inner.location, "unknown keyword '\(inner.name)' in global: expected usage-count, minor-count, dialog-refresh, disable-ip-verification, udev-always-use-vnr or cmd-timeout-short/medium/long")
            }
        }
        return global
    }
}
