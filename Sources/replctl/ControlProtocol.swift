import Foundation

/// One request on the control socket: a JSON object on one line.
struct ControlRequest: Codable, Sendable {
    /// The command, named as drbdadm names it (`up`, `primary`, `status`, ...).
    var command: String
    /// The resource, or "all".
    var resource: String?
    /// Flags such as `force`, `clear-bitmap`, `discard-my-data`, `json`, `verbose`.
    var flags: [String] = []
    /// The configuration file the client read (the daemon reloads it for `up`).
    var config: String?
    /// `read`/`write`: the volume (0 when not given), byte offset and length.
    var volume: Int?
    var offset: Int64?
    var length: Int?
    /// `write`: the data, base64.
    var data: String?
}

/// The answer: the text to print, the exit code, and a JSON document where asked.
struct ControlResponse: Codable, Sendable {
    var exitCode: Int32
    var output: String
    var error: String
}

extension JSONEncoder {
    /// Compact, sorted JSON: one object per line on the control socket.
    static let controlLine: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}
