/// What the option haggling settled for the transmission phase.
struct NBDNegotiated: Equatable {
    /// `NBD_OPT_STRUCTURED_REPLY` was acknowledged.
    var structuredReplies = false
    /// `base:allocation` was selected with `NBD_OPT_SET_META_CONTEXT`: the client may send
    /// `NBD_CMD_BLOCK_STATUS`.
    var allocationContext = false
}

/// `NBD_OPT_LIST_META_CONTEXT` and `NBD_OPT_SET_META_CONTEXT`: the request's export name and
/// queries, and which of this server's contexts (only `base:allocation`) they select.
struct NBDMetaContextRequest: Equatable {
    /// The export the contexts are for.
    var exportName: String
    /// The queries, in order (none: every context, for a LIST).
    var queries: [String]

    /// Longest string the spec allows (export names, queries).
    static let longestString = 4096

    /// Why a request was refused: the reply type and the message.
    struct Refusal: Error, Equatable {
        var reply: NBDProtocol.Reply
        var message: String
    }

    /// Parses the option data: u32 name length, name, u32 query count, then each query as a
    /// u32 length and its bytes — every length checked against what is there.
    static func parse(_ data: [UInt8]) -> Result<NBDMetaContextRequest, Refusal> {
        var position = 0
        func uint32() -> Int? {
            guard data.count - position >= 4 else { return nil }
            defer { position += 4 }
            return Int(data[position..<(position + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }
        func string(_ length: Int, _ what: String) -> Result<String, Refusal> {
            guard length <= longestString else {
                return .failure(Refusal(reply: .errorTooBig, message: "\(what) of \(length) bytes (at most \(longestString))"))
            }
            guard data.count - position >= length else {
                return .failure(Refusal(reply: .errorInvalid, message: "\(what) of \(length) bytes, but only \(data.count - position) follow"))
            }
            defer { position += length }
            return .success(String(decoding: data[position..<(position + length)], as: UTF8.self))
        }
        guard let nameLength = uint32() else { return .failure(Refusal(reply: .errorInvalid, message: "no export name length")) }
        let name: String
        switch string(nameLength, "export name") {
        case .failure(let refusal): return .failure(refusal)
        case .success(let value): name = value
        }
        guard let count = uint32() else { return .failure(Refusal(reply: .errorInvalid, message: "no query count")) }
        var queries: [String] = []
        for index in 0..<count {
            guard let length = uint32() else {
                return .failure(Refusal(reply: .errorInvalid, message: "query \(index + 1) of \(count) is missing"))
            }
            switch string(length, "query \(index + 1)") {
            case .failure(let refusal): return .failure(refusal)
            case .success(let query): queries.append(query)
            }
        }
        guard position == data.count else {
            return .failure(Refusal(reply: .errorInvalid, message: "\(data.count - position) bytes after the last query"))
        }
        return .success(NBDMetaContextRequest(exportName: name, queries: queries))
    }

    /// The contexts a LIST returns: every one for no query, those of a namespace for
    /// `namespace:`, the named one for its full name.
    var listed: [String] {
        let all = [NBDProtocol.BaseAllocation.name]
        guard !queries.isEmpty else { return all }
        return all.filter { context in
            queries.contains { query in query == context || (query.hasSuffix(":") && context.hasPrefix(query)) }
        }
    }

    /// The contexts a SET selects: those named in full (a namespace alone selects none).
    var selected: [String] {
        [NBDProtocol.BaseAllocation.name].filter { queries.contains($0) }
    }
}
