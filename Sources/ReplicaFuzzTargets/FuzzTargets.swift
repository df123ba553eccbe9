#if canImport(Glibc)
import Glibc
#endif
import ReplicaCore
import ReplicaEngine
@_spi(Fuzzing) import ReplicaNBD
import ReplicaTransportTCP

/// The fuzz targets: each takes one input of any bytes and must return without crashing,
/// hanging or allocating without bound. libFuzzer drives them in `make fuzz` (the `Fuzz/`
/// package); `FuzzCorpusTests` replays the committed corpus (`Fuzz/Corpus/NAME/`) and a short
/// seeded mutation run of it in `make test`.
public enum FuzzTargets {
    /// The targets by name (the corpus folder's name).
    public static let all: [(name: String, run: @Sendable ([UInt8]) -> Void)] = [
        ("frames", frames), ("engine", engine), ("authentication", authentication), ("nbd", nbd), ("config", config),
    ]

    /// The frames of `input` as they would arrive on a channel: each header checked, its
    /// payload decoded (with what is left when the input ends first); `body` gets each frame
    /// that decodes, with its header and payload. Stops at the first header that does not.
    static func walkFrames(_ input: ArraySlice<UInt8>, _ body: (FrameHeader, [UInt8], Frame?) -> Void) {
        var rest = input
        while rest.count >= FrameHeader.size {
            guard let header = try? FrameHeader(bytes: Array(rest.prefix(FrameHeader.size))) else { return }
            rest = rest.dropFirst(FrameHeader.size)
            let payload = Array(rest.prefix(Int(header.length)))
            rest = rest.dropFirst(payload.count)
            let fixed = header.type.fixedPayloadSize
            body(header, payload, try? FrameCodec.decode(header, fixed: Array(payload.prefix(fixed)), data: Array(payload.dropFirst(fixed))))
        }
    }

    /// The frame decoder: headers and payloads back to back, as they would arrive on a channel;
    /// what decodes must encode to bytes that decode to the same frame.
    public static func frames(_ input: [UInt8]) {
        walkFrames(input[...]) { header, _, frame in
            guard let frame else { return }
            let (encodedHeader, encodedPayload) = FrameCodec.encode(frame, volume: header.volume)
            let fixed = header.type.fixedPayloadSize
            let again = try? FrameCodec.decode(FrameHeader(bytes: encodedHeader), fixed: Array(encodedPayload.prefix(fixed)),
                                               data: Array(encodedPayload.dropFirst(fixed)))
            precondition(again == frame, "\(frame) does not survive encoding: \(String(describing: again))")
        }
    }

    /// The connection handshake and whatever follows: the frames of `input` after its first
    /// byte (which picks RESOLVE_CONFLICTS) fed to a Secondary's engine on a 4 MiB disk that has
    /// just connected.
    public static func engine(_ input: [UInt8]) {
        guard let layout = try? MetadataLayout.internalLayout(deviceBytes: 4 << 20) else { return }
        var engine = VolumeEngine(configuration: EngineConfiguration(), superblock: Superblock(layout: layout),
                                  bitmap: Bitmap(coveringBytes: layout.usableDataBytes), dataSize: layout.usableDataBytes, entropySeed: 7)
        _ = engine.connect(discardMyData: false)
        _ = engine.handle(.connectionEstablished(resolveConflicts: input.first.map { $0 & 1 == 1 } ?? false))
        walkFrames(input.dropFirst()) { _, _, frame in
            if let frame { _ = engine.handle(.frame(frame)) }
        }
        _ = engine.handle(.connectionLost)
    }

    /// Peer authentication (`cram-hmac-alg sha256`) against a peer that sends `input`.
    public static func authentication(_ input: [UInt8]) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else { return }
        let local = TCPStream(descriptor: fds[0])
        input.withUnsafeBytes { bytes in
            var done = 0
            while done < bytes.count {
                let n = send(fds[1], bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if n <= 0 { break }
                done += n
            }
        }
        shutdown(fds[1], Int32(SHUT_WR))
        _ = try? authenticator.authenticate(local, timeoutMilliseconds: 100)
        local.close()
        close(fds[1])
    }

    private static let authenticator = PeerAuthentication(authenticator: OpenSSLAuthenticator(algorithm: "sha256")!, secret: Array("fuzz".utf8))

    /// An NBD client session: greeting, options, requests.
    public static func nbd(_ input: [UInt8]) { NBDFuzzing.session(input) }

    /// The resource-file reader: the text parsed (with the file's `include`s not followed),
    /// and what parses dumped and read again.
    public static func config(_ input: [UInt8]) {
        let text = String(decoding: input, as: UTF8.self)
        guard let configuration = try? ConfigBuilder.load(text: text, file: "/fuzz/r.res") else { return }
        let dumped = ConfigDumper(nodeName: "fuzz").dump(configuration)
        _ = try? ConfigBuilder.load(text: dumped, file: "/fuzz/dumped.res")
        for resource in configuration.resources {
            _ = try? ResourceSupport.check(resource, in: configuration, node: resource.hosts.first?.names.first ?? "fuzz")
        }
    }
}
