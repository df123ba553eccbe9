import Foundation

/// One statement of a configuration file: `keyword arg... ;` or `keyword arg... { statements }`.
///
/// This is the syntax tree before any meaning is given to the keywords; ``ConfigBuilder``
/// interprets it against DRBD's grammar and option tables.
public struct ConfigStatement: Sendable, Equatable {
    /// The first word.
    public var keyword: ConfigToken
    /// The words after the keyword, before `;` or `{`.
    public var arguments: [ConfigToken]
    /// The statements inside `{ }`, or nil for a statement ended by `;`.
    public var block: [ConfigStatement]?
    /// Where the closing `}` of the block is (for messages about a block).
    public var blockEnd: SourceLocation?

    /// Where the statement starts.
    public var location: SourceLocation { keyword.location }
    /// The keyword text.
    public var name: String { keyword.text }
}

/// Reads configuration files into ``ConfigStatement`` trees, following `include` statements
/// (glob patterns, relative to the directory of the including file).
public struct ConfigSyntaxReader {
    /// Maximum include nesting, against include loops.
    public static let maximumIncludeDepth = 16

    /// The top-level statements read completely before a syntax error (for a caller that
    /// checks them: a problem in them comes first in reading order).
    final class Prefix {
        var statements: [ConfigStatement] = []
    }
    private let prefix: Prefix?

    /// Creates a reader.
    public init() { prefix = nil }

    /// A reader that keeps, in `prefix`, the top-level statements it completes.
    init(keeping prefix: Prefix) { self.prefix = prefix }

    /// Reads and parses `path` and everything it includes.
    /// - Throws: ``ConfigError`` naming file, line and column of the first problem.
    public func read(path: String) throws(ConfigError) -> [ConfigStatement] {
        try read(path: path, depth: 0, includedFrom: nil)
    }

    /// Parses `text` as if it were the content of `file` (includes are resolved relative to it).
    public func parse(text: String, file: String) throws(ConfigError) -> [ConfigStatement] {
        try parse(text: text, file: file, depth: 0)
    }

    private func read(path: String, depth: Int, includedFrom: SourceLocation?) throws(ConfigError) -> [ConfigStatement] {
        let location = includedFrom ?? SourceLocation(file: path, line: 1, column: 1)
        guard let data = FileManager.default.contents(atPath: path) else {
            let what = includedFrom == nil ? "configuration file" : "include file"
            throw ConfigError(location, "cannot open \(what) '\(path)': \(Self.openFailureReason(path))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(location, "'\(path)' is not UTF-8 text")
        }
        return try parse(text: text, file: path, depth: depth)
    }

    private static func openFailureReason(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) { return "no such file" }
        return isDirectory.boolValue ? "is a directory" : "permission denied"
    }

    private func parse(text: String, file: String, depth: Int) throws(ConfigError) -> [ConfigStatement] {
        var lexer = ConfigLexer(text: text, file: file)
        let tokens = try lexer.tokenize()
        var position = 0
        let statements = try parseBlock(tokens, &position, opener: nil, depth: depth)
        return statements
    }

    private func parseBlock(
        _ tokens: [ConfigToken], _ position: inout Int, opener: ConfigStatement?, depth: Int
    ) throws(ConfigError) -> [ConfigStatement] {
        var statements: [ConfigStatement] = []
        while true {
            let token = tokens[position]
            switch token.kind {
            case .end:
                if let opener {
                    let what = ([opener.name] + opener.arguments.map(\.text)).joined(separator: " ")
                    throw ConfigError(
                        token.location,
                        "unterminated block: '\(what) {' opened at line \(opener.location.line), column \(opener.location.column) is not closed (missing '}')"
                    )
                }
                return statements
            case .closeBrace:
                guard opener != nil else {
                    throw ConfigError(token.location, "unexpected '}': no block is open here")
                }
                return statements
            case .semicolon:
                throw ConfigError(token.location, "unexpected ';': a keyword was expected")
            case .openBrace:
                throw ConfigError(token.location, "unexpected '{': a keyword was expected before a block")
            case .word:
                if token.quoted {
                    throw ConfigError(token.location, "expected a keyword, got the string \"\(token.text)\"")
                }
                if token.text == "skip" {
                    try skipBlock(tokens, &position)
                    continue
                }
                var statement = ConfigStatement(keyword: token, arguments: [], block: nil, blockEnd: nil)
                position += 1
                argumentLoop: while true {
                    let next = tokens[position]
                    switch next.kind {
                    case .word:
                        statement.arguments.append(next)
                        position += 1
                    case .semicolon:
                        position += 1
                        break argumentLoop
                    case .openBrace:
                        position += 1
                        statement.block = try parseBlock(tokens, &position, opener: statement, depth: depth)
                        statement.blockEnd = tokens[position].location
                        position += 1  // the closing brace
                        break argumentLoop
                    case .closeBrace, .end:
                        let shown = ([statement.name] + statement.arguments.map(\.text)).joined(separator: " ")
                        throw ConfigError(next.location, "expected ';' after '\(shown)'")
                    }
                }
                let complete = statement.name == "include" && statement.block == nil ? try expandInclude(statement, depth: depth) : [statement]
                statements += complete
                if opener == nil, depth == 0 { prefix?.statements += complete }
            }
        }
    }

    /// `skip [words] { anything, with balanced braces }`: ignored entirely, as drbdadm does.
    private func skipBlock(_ tokens: [ConfigToken], _ position: inout Int) throws(ConfigError) {
        let start = tokens[position]
        position += 1
        while tokens[position].kind == .word { position += 1 }
        guard tokens[position].kind == .openBrace else {
            throw ConfigError(tokens[position].location, "expected '{' after 'skip'")
        }
        var depth = 0
        repeat {
            switch tokens[position].kind {
            case .openBrace: depth += 1
            case .closeBrace: depth -= 1
            case .end:
                throw ConfigError(tokens[position].location, "unterminated block: 'skip {' opened at line \(start.location.line), column \(start.location.column) is not closed (missing '}')")
            default: break
            }
            position += 1
        } while depth > 0
    }

    private func expandInclude(_ statement: ConfigStatement, depth: Int) throws(ConfigError) -> [ConfigStatement] {
        guard statement.arguments.count == 1 else {
            throw ConfigError(statement.location, "'include' takes exactly one file name or pattern")
        }
        guard depth < Self.maximumIncludeDepth else {
            throw ConfigError(statement.location, "includes nested deeper than \(Self.maximumIncludeDepth) levels (an include loop?)")
        }
        let pattern = statement.arguments[0].text
        let base = (statement.location.file as NSString).deletingLastPathComponent
        let absolute = pattern.hasPrefix("/") ? pattern : (base.isEmpty ? pattern : base + "/" + pattern)
        let isPattern = pattern.contains(where: { "*?[".contains($0) })
        let files = isPattern ? Self.glob(absolute) : [absolute]
        var result: [ConfigStatement] = []
        for file in files {
            result += try read(path: file, depth: depth + 1, includedFrom: statement.arguments[0].location)
        }
        return result
    }

    /// Files matching a shell pattern, sorted (as glob(3) returns them).
    static func glob(_ pattern: String) -> [String] {
        let directory = (pattern as NSString).deletingLastPathComponent
        let namePattern = (pattern as NSString).lastPathComponent
        if directory.contains(where: { "*?[".contains($0) }) {
            // Pattern in a directory component: expand level by level.
            return glob(directory).flatMap { glob($0 + "/" + namePattern) }.sorted()
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory) else {
            return []
        }
        return names.filter { !$0.hasPrefix(".") && fnmatch(namePattern, $0, 0) == 0 }
            .sorted()
            .map { directory.isEmpty ? $0 : directory + "/" + $0 }
    }
}
