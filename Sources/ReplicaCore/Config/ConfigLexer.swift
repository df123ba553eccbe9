/// One lexical token of a DRBD-syntax configuration file.
public struct ConfigToken: Sendable, Equatable {
    /// The kind of token.
    public enum Kind: Sendable, Equatable {
        /// A bare word or a quoted string (see ``ConfigToken/quoted``).
        case word
        /// `{`
        case openBrace
        /// `}`
        case closeBrace
        /// `;`
        case semicolon
        /// End of the file.
        case end
    }

    /// The kind of token.
    public var kind: Kind
    /// The text, with quotes removed and escapes resolved for quoted strings.
    public var text: String
    /// True when the word was written in double quotes (so it is never a keyword).
    public var quoted: Bool
    /// Where the token starts.
    public var location: SourceLocation
}

/// Splits configuration text into tokens: words, quoted strings, braces and semicolons.
/// `#` starts a comment that runs to the end of the line.
public struct ConfigLexer {
    private let bytes: [UInt8]
    private let file: String
    private var index = 0
    private var line = 1
    private var column = 1

    /// Creates a lexer over the text of `file`.
    public init(text: String, file: String) {
        self.bytes = Array(text.utf8)
        self.file = file
    }

    private var here: SourceLocation { SourceLocation(file: file, line: line, column: column) }

    private mutating func advance() {
        if bytes[index] == UInt8(ascii: "\n") {
            line += 1
            column = 1
        } else if bytes[index] & 0xC0 != 0x80 {
            column += 1
        }
        index += 1
    }

    private static func isSpace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C
    }

    private static func endsWord(_ b: UInt8) -> Bool {
        isSpace(b) || b == UInt8(ascii: ";") || b == UInt8(ascii: "{") || b == UInt8(ascii: "}")
            || b == UInt8(ascii: "\"") || b == UInt8(ascii: "#")
    }

    /// Returns every token of the text, ending with an `.end` token.
    /// - Throws: ``ConfigError`` for an unterminated string or a control character.
    public mutating func tokenize() throws(ConfigError) -> [ConfigToken] {
        var tokens: [ConfigToken] = []
        while true {
            while index < bytes.count, Self.isSpace(bytes[index]) { advance() }
            guard index < bytes.count else {
                tokens.append(ConfigToken(kind: .end, text: "", quoted: false, location: here))
                return tokens
            }
            let start = here
            let b = bytes[index]
            switch b {
            case UInt8(ascii: "#"):
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { advance() }
            case UInt8(ascii: "{"):
                advance()
                tokens.append(ConfigToken(kind: .openBrace, text: "{", quoted: false, location: start))
            case UInt8(ascii: "}"):
                advance()
                tokens.append(ConfigToken(kind: .closeBrace, text: "}", quoted: false, location: start))
            case UInt8(ascii: ";"):
                advance()
                tokens.append(ConfigToken(kind: .semicolon, text: ";", quoted: false, location: start))
            case UInt8(ascii: "\""):
                advance()
                var value: [UInt8] = []
                var closed = false
                while index < bytes.count {
                    let c = bytes[index]
                    if c == UInt8(ascii: "\"") {
                        advance()
                        closed = true
                        break
                    }
                    if c == UInt8(ascii: "\n") { break }
                    if c == UInt8(ascii: "\\"), index + 1 < bytes.count {
                        advance()
                        let e = bytes[index]
                        switch e {
                        case UInt8(ascii: "n"): value.append(UInt8(ascii: "\n"))
                        case UInt8(ascii: "t"): value.append(UInt8(ascii: "\t"))
                        default: value.append(e)
                        }
                        advance()
                        continue
                    }
                    value.append(c)
                    advance()
                }
                guard closed else {
                    throw ConfigError(start, "unterminated string: a '\"' opened here is not closed on the same line")
                }
                tokens.append(ConfigToken(kind: .word, text: String(decoding: value, as: UTF8.self), quoted: true, location: start))
            default:
                if b < 0x20 {
                    throw ConfigError(start, "unexpected control character 0x\(String(b, radix: 16))")
                }
                let from = index
                while index < bytes.count, !Self.endsWord(bytes[index]) { advance() }
                let text = String(decoding: bytes[from..<index], as: UTF8.self)
                tokens.append(ConfigToken(kind: .word, text: text, quoted: false, location: start))
            }
        }
    }
}
