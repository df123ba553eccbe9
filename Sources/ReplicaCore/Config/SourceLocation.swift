/// A position in a configuration file: file path, 1-based line and column.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// Path of the file as it was opened.
    public var file: String
    /// 1-based line number.
    public var line: Int
    /// 1-based column number.
    public var column: Int

    /// Creates a location.
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`, the form compilers and editors understand.
    public var description: String { "\(file):\(line):\(column)" }
}

/// An error in a configuration file, always naming where it is and what is wrong.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where the problem was found.
    public var location: SourceLocation
    /// What is wrong, in words: what was expected or which rule was broken.
    public var message: String

    /// Creates an error at a location.
    public init(_ location: SourceLocation, _ message: String) {
        self.location = location
        self.message = message
    }

    /// `file:line:column: message`.
    public var description: String { "\(location): \(message)" }
}
