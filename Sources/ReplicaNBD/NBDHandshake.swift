/// The option haggling of the fixed newstyle handshake, up to the start of transmission.
struct NBDHandshake {
    let socket: NBDSocket
    let source: any NBDExportSource
    /// TLS offered with NBD_OPT_STARTTLS (nil: not offered).
    var tls: NBDTLSPolicy? = nil

    /// How the handshake ended.
    enum Outcome {
        /// Transmission starts with this backend, and what was negotiated.
        case transmission(any NBDBackend, NBDNegotiated)
        /// The client aborted or the connection must close.
        case closed(String)
    }

    func run() throws(NBDSocket.Closed) -> Outcome {
        var greeting = BigEndianWriter()
        greeting.put(NBDProtocol.initialMagic)
        greeting.put(NBDProtocol.optionMagic)
        greeting.put(NBDProtocol.handshakeFlags)
        try socket.write([greeting.bytes])
        let clientFlags = try readUInt32()
        guard clientFlags & ~NBDProtocol.knownClientFlags == 0 else {
            return .closed("unknown client flags 0x\(String(clientFlags, radix: 16))")
        }
        let noZeroes = clientFlags & NBDProtocol.clientNoZeroes != 0
        var negotiated = NBDNegotiated()
        while true {
            let magic = try readUInt64()
            guard magic == NBDProtocol.optionMagic else { return .closed("option without the IHAVEOPT magic") }
            let rawOption = try readUInt32()
            let length = try readUInt32()
            guard length <= NBDProtocol.maximumOptionLength else {
                return .closed("option \(rawOption) with \(length) bytes of data (at most \(NBDProtocol.maximumOptionLength))")
            }
            let data = try socket.read(Int(length))
            if let tls, tls.required, !socket.isTLS, rawOption != NBDProtocol.Option.startTLS.rawValue,
               rawOption != NBDProtocol.Option.abort.rawValue {
                // EXPORT_NAME has no error reply: the connection ends.
                if rawOption == NBDProtocol.Option.exportName.rawValue { return .closed("EXPORT_NAME without TLS: this export requires TLS") }
                try reply(rawOption, .errorTLSRequired, message: "this export requires TLS: send NBD_OPT_STARTTLS first")
                continue
            }
            guard let option = NBDProtocol.Option(rawValue: rawOption) else {
                try reply(rawOption, .errorUnsupported, message: "option \(rawOption) is not supported")
                continue
            }
            switch option {
            case .exportName:
                let name = String(decoding: data, as: UTF8.self)
                guard name.isEmpty || name == source.name, case .success(let backend) = source.open() else {
                    return .closed("EXPORT_NAME '\(name)' refused")
                }
                var w = BigEndianWriter()
                w.put(UInt64(backend.size))
                w.put(Self.transmissionFlags(backend))
                if !noZeroes { w.put([UInt8](repeating: 0, count: 124)) }
                try socket.write([w.bytes])
                return .transmission(backend, negotiated)
            case .abort:
                try reply(rawOption, .ack)
                return .closed("client aborted")
            case .list:
                guard data.isEmpty else {
                    try reply(rawOption, .errorInvalid, message: "LIST carries no data")
                    continue
                }
                var w = BigEndianWriter()
                w.put(UInt32(source.name.utf8.count))
                w.put(Array(source.name.utf8))
                w.put(Array(source.description.utf8))
                try reply(rawOption, .server, w.bytes)
                try reply(rawOption, .ack)
            case .structuredReply:
                guard data.isEmpty else {
                    try reply(rawOption, .errorInvalid, message: "STRUCTURED_REPLY carries no data")
                    continue
                }
                negotiated.structuredReplies = true
                try reply(rawOption, .ack)
            case .info, .go:
                guard let (name, requests) = Self.parseInfoRequest(data) else {
                    try reply(rawOption, .errorInvalid, message: "malformed \(option == .go ? "GO" : "INFO") request")
                    continue
                }
                guard name.isEmpty || name == source.name else {
                    try reply(rawOption, .errorUnknown, message: "no export named '\(name)' here (this socket serves '\(source.name)')")
                    continue
                }
                let backend: any NBDBackend
                switch source.open() {
                case .failure(let refusal):
                    try reply(rawOption, .errorPolicy, message: refusal.message)
                    continue
                case .success(let opened):
                    backend = opened
                }
                var export = BigEndianWriter()
                export.put(NBDProtocol.Info.export.rawValue)
                export.put(UInt64(backend.size))
                export.put(Self.transmissionFlags(backend))
                try reply(rawOption, .info, export.bytes)
                if requests.contains(NBDProtocol.Info.name.rawValue) {
                    try reply(rawOption, .info, [0, UInt8(NBDProtocol.Info.name.rawValue)] + Array(source.name.utf8))
                }
                if requests.contains(NBDProtocol.Info.description.rawValue) {
                    try reply(rawOption, .info, [0, UInt8(NBDProtocol.Info.description.rawValue)] + Array(source.description.utf8))
                }
                var sizes = BigEndianWriter()
                sizes.put(NBDProtocol.Info.blockSize.rawValue)
                sizes.put(UInt32(NBDProtocol.minimumBlockSize))
                sizes.put(UInt32(NBDProtocol.preferredBlockSize))
                sizes.put(UInt32(NBDProtocol.maximumPayload))
                try reply(rawOption, .info, sizes.bytes)
                try reply(rawOption, .ack)
                if option == .go { return .transmission(backend, negotiated) }
            case .listMetaContext, .setMetaContext:
                try metaContext(option, rawOption, data, &negotiated)
            case .startTLS:
                guard let tls else {
                    try reply(rawOption, .errorUnsupported, message: "TLS is not offered on this socket")
                    continue
                }
                guard !socket.isTLS else {
                    try reply(rawOption, .errorInvalid, message: "TLS is on already")
                    continue
                }
                guard data.isEmpty else {
                    try reply(rawOption, .errorInvalid, message: "STARTTLS carries no data")
                    continue
                }
                try reply(rawOption, .ack)
                try socket.startTLS(context: tls.context, timeoutMilliseconds: tls.handshakeTimeoutMilliseconds)
                // What was agreed in clear is forgotten: the client negotiates again under TLS.
                negotiated = NBDNegotiated()
            }
        }
    }

    /// `NBD_OPT_LIST_META_CONTEXT` / `NBD_OPT_SET_META_CONTEXT`: one `NBD_REP_META_CONTEXT` per
    /// context listed or selected, then an ACK; a SET replaces the selection (a refused one
    /// leaves none). Both need structured replies first.
    private func metaContext(_ option: NBDProtocol.Option, _ rawOption: UInt32, _ data: [UInt8],
                             _ negotiated: inout NBDNegotiated) throws(NBDSocket.Closed) {
        let setting = option == .setMetaContext
        let name = setting ? "SET_META_CONTEXT" : "LIST_META_CONTEXT"
        if setting { negotiated.allocationContext = false }
        guard negotiated.structuredReplies else {
            return try reply(rawOption, .errorInvalid, message: "\(name) needs structured replies (NBD_OPT_STRUCTURED_REPLY) first")
        }
        let request: NBDMetaContextRequest
        switch NBDMetaContextRequest.parse(data) {
        case .failure(let refusal): return try reply(rawOption, refusal.reply, message: "\(name): \(refusal.message)")
        case .success(let parsed): request = parsed
        }
        guard request.exportName.isEmpty || request.exportName == source.name else {
            return try reply(rawOption, .errorUnknown, message: "no export named '\(request.exportName)' here (this socket serves '\(source.name)')")
        }
        for context in setting ? request.selected : request.listed {
            var body = BigEndianWriter()
            // A LIST's ids are reserved (zero); a SET gives each selected context its id.
            body.put(setting ? NBDProtocol.BaseAllocation.contextID : UInt32(0))
            body.put(Array(context.utf8))
            try reply(rawOption, .metaContext, body.bytes)
            if setting { negotiated.allocationContext = true }
        }
        try reply(rawOption, .ack)
    }

    static func transmissionFlags(_ backend: any NBDBackend) -> UInt16 {
        typealias F = NBDProtocol.TransmissionFlag
        var flags = F.hasFlags | F.sendFlush | F.sendFUA | F.canMultiConnection
        if backend.readOnly {
            flags |= F.readOnly
        } else {
            flags |= F.sendTrim | F.sendWriteZeroes | F.sendFastZero
        }
        return flags
    }

    /// INFO/GO data: u32 name length, name, u16 count, count × u16 information requests.
    static func parseInfoRequest(_ data: [UInt8]) -> (String, [UInt16])? {
        guard data.count >= 6 else { return nil }
        let nameLength = Int(data[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        guard nameLength <= data.count - 6 else { return nil }
        let name = String(decoding: data[4..<(4 + nameLength)], as: UTF8.self)
        let countAt = 4 + nameLength
        let count = Int(UInt16(data[countAt]) << 8 | UInt16(data[countAt + 1]))
        guard data.count == countAt + 2 + 2 * count else { return nil }
        let requests = (0..<count).map { i in UInt16(data[countAt + 2 + 2 * i]) << 8 | UInt16(data[countAt + 3 + 2 * i]) }
        return (name, requests)
    }

    private func reply(_ option: UInt32, _ type: NBDProtocol.Reply, _ data: [UInt8] = [], message: String? = nil) throws(NBDSocket.Closed) {
        let payload = message.map { Array($0.utf8) } ?? data
        var w = BigEndianWriter()
        w.put(NBDProtocol.replyMagic)
        w.put(option)
        w.put(type.rawValue)
        w.put(UInt32(payload.count))
        try socket.write([w.bytes, payload])
    }

    private func readUInt32() throws(NBDSocket.Closed) -> UInt32 {
        try socket.read(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    private func readUInt64() throws(NBDSocket.Closed) -> UInt64 {
        try socket.read(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}
