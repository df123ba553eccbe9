import Foundation
import Testing
import ReplicaCore
import ReplicaEngine
import ReplicaFuzzTargets

/// The fuzz targets of `make fuzz` (libFuzzer, `Fuzz/`) run here on the committed corpus
/// (`Fuzz/Corpus/TARGET/`, seeds and what libFuzzer found interesting) and on a short seeded
/// mutation run of it: no input may crash or hang a target. `REPLICA_WRITE_FUZZ_SEEDS=1`
/// rewrites the seed files from the values below.
@Suite("Fuzz corpus", .serialized)
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus")

    static func encoded(_ frames: [Frame]) -> [UInt8] {
        frames.flatMap { frame -> [UInt8] in
            let (header, payload) = FrameCodec.encode(frame)
            return header + payload
        }
    }

    /// A peer's side of a handshake, then traffic.
    static let handshake: [Frame] = [
        .features(FeaturesPayload(protocolMin: 1, protocolMax: 1, featureFlags: 0, nodeID: 1)),
        .protocolParameters(ProtocolParametersPayload(wireProtocol: 3, afterSB0: 0, afterSB1: 0, afterSB2: 0, connectionFlags: 0, allowTwoPrimaries: false, integrityAlgorithm: "")),
        .syncParameters(SyncParametersPayload(resyncRate: 250, planAhead: 20, delayTarget: 10, fillTarget: 100, maxRate: 102_400, verifyAlgorithm: "", checksumAlgorithm: "")),
        .sizes(SizesPayload(backingSize: 4 << 20, userSize: 0, currentSize: 3 << 20, maxRequestSize: 1 << 20)),
        .uuids(UUIDsPayload(uuids: GenerationUUIDs(current: 0xA1, bitmap: 0, historyStart: 0, historyEnd: 0), dirtyBits: 0, flags: 0)),
        .state(ResourceState(role: .primary, peerRole: .secondary, connection: .connected, disk: .upToDate, peerDisk: .upToDate).wireValue),
        .data(DataHeader(offset: 8192, blockID: 77, sequence: 1, flags: DataFlags.sendWriteAck), [UInt8](repeating: 0x5A, count: 4096)),
        .barrier(epoch: 1), .ping, .outOfSync(offset: 0, size: 4096),
        .resyncRequest(BlockRequest(offset: 0, blockID: 4, size: 4096)),
        .bitmap(BitmapChunk(firstBit: 0, totalBits: 768, words: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        .disconnect,
    ]

    /// An NBD client: flags, structured replies, base:allocation, GO, then requests.
    static var nbdSession: [UInt8] {
        func be32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
        func be64(_ v: UInt64) -> [UInt8] { be32(UInt32(v >> 32)) + be32(UInt32(truncatingIfNeeded: v)) }
        func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
        func option(_ number: UInt32, _ data: [UInt8] = []) -> [UInt8] { Array("IHAVEOPT".utf8) + be32(number) + be32(UInt32(data.count)) + data }
        func request(_ type: UInt16, _ handle: UInt64, _ offset: UInt64, _ length: UInt32, flags: UInt16 = 0, data: [UInt8] = []) -> [UInt8] {
            be32(0x2560_9513) + be16(flags) + be16(type) + be64(handle) + be64(offset) + be32(length) + data
        }
        let context = Array("base:allocation".utf8)
        var bytes = be32(3)
        bytes += option(8)  // STRUCTURED_REPLY
        bytes += option(3)  // LIST
        bytes += option(10, be32(0) + be32(1) + be32(UInt32(context.count)) + context)  // SET_META_CONTEXT
        bytes += option(6, be32(0) + be16(1) + be16(3))  // INFO with BLOCK_SIZE
        bytes += option(7, be32(0) + be16(0))  // GO
        bytes += request(1, 1, 0, 4096, data: [UInt8](repeating: 7, count: 4096))  // WRITE
        bytes += request(0, 2, 0, 4096)  // READ
        bytes += request(3, 3, 0, 0)  // FLUSH
        bytes += request(4, 4, 8192, 4096)  // TRIM
        bytes += request(6, 5, 16384, 4096, flags: 1)  // WRITE_ZEROES, FUA
        bytes += request(7, 6, 0, 65536)  // BLOCK_STATUS
        bytes += request(2, 7, 0, 0)  // DISC
        return bytes
    }

    static var seeds: [String: [(String, [UInt8])]] {
        let samples: [Frame] = handshake + [
            .resyncReply(offset: 0, blockID: 4, [UInt8](repeating: 2, count: 4096)),
            .compressedBitmap(BitmapChunk(firstBit: 64, totalBits: 1 << 20, words: [0xF0, 0, 0, ~0, ~0, 1 << 63, 0])),
            .writeAck(BlockAck(offset: 4096, blockID: 1, size: 4096, sequence: 2)),
            .authChallenge(Array(0..<64)), .authResponse(Array(repeating: 0xA5, count: 32)),
        ]
        var configs: [(String, [UInt8])] = []
        let valid = corpus.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Tests/ReplctlTests/Corpus/valid")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: valid.path).sorted()) ?? [] {
            if let data = FileManager.default.contents(atPath: valid.appendingPathComponent(name).path) { configs.append(("seed-\(name)", Array(data))) }
        }
        return [
            "frames": samples.enumerated().map { ("seed-\($0.offset)", encoded([$0.element])) } + [("seed-all", encoded(samples))],
            "engine": [("seed-handshake", [0] + encoded(handshake)), ("seed-handshake-resolving", [1] + encoded(handshake))],
            "authentication": [("seed-challenge", encoded([.authChallenge(Array(100..<164)), .authResponse(Array(repeating: 1, count: 32))]))],
            "nbd": [("seed-session", nbdSession)],
            "config": configs,
        ]
    }

    /// The corpus files of `target`.
    static func inputs(_ target: String) -> [[UInt8]] {
        let folder = corpus.appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()) ?? []
        return names.compactMap { FileManager.default.contents(atPath: folder.appendingPathComponent($0).path).map(Array.init) }
    }

    @Test func seedsAreCommitted() throws {
        let write = ProcessInfo.processInfo.environment["REPLICA_WRITE_FUZZ_SEEDS"] == "1"
        for (target, files) in Self.seeds {
            let folder = Self.corpus.appendingPathComponent(target)
            if write { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
            for (name, bytes) in files {
                let path = folder.appendingPathComponent(name).path
                if write { _ = FileManager.default.createFile(atPath: path, contents: Data(bytes)) }
                #expect(FileManager.default.contents(atPath: path).map(Array.init) == bytes, "\(target)/\(name) differs from its seed (REPLICA_WRITE_FUZZ_SEEDS=1 rewrites it)")
            }
        }
    }

    /// Every committed input of every target, then `mutations` seeded mutations of them
    /// (bit flips, byte changes, cuts, splices, repeats), as libFuzzer's would be.
    @Test(arguments: FuzzTargets.all.map(\.name))
    func corpusAndMutationsRunCleanly(target: String) throws {
        let run = try #require(FuzzTargets.all.first { $0.name == target }?.run)
        let inputs = Self.inputs(target)
        #expect(!inputs.isEmpty, "no corpus for \(target)")
        for input in inputs { run(input) }
        var random = SeededGenerator(seed: 0x5EED_0000 + UInt64(target.utf8.count))
        let mutations = Int(ProcessInfo.processInfo.environment["REPLICA_FUZZ_MUTATIONS"] ?? "") ?? (target == "nbd" ? 300 : 2000)
        for _ in 0..<mutations {
            var input = inputs[Int.random(in: 0..<inputs.count, using: &random)]
            for _ in 0...Int.random(in: 0..<4, using: &random) {
                Self.mutate(&input, with: inputs, using: &random)
            }
            run(input)
        }
    }

    static func mutate(_ input: inout [UInt8], with others: [[UInt8]], using random: inout SeededGenerator) {
        guard !input.isEmpty else {
            input = [UInt8.random(in: 0...255, using: &random)]
            return
        }
        let at = Int.random(in: 0..<input.count, using: &random)
        switch Int.random(in: 0..<6, using: &random) {
        case 0: input[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
        case 1: input[at] = [0, 0xFF, 0x7F, 0x80, 1, UInt8.random(in: 0...255, using: &random)][Int.random(in: 0..<6, using: &random)]
        case 2: input.removeSubrange(at..<min(input.count, at + Int.random(in: 1...64, using: &random)))
        case 3:
            let other = others[Int.random(in: 0..<others.count, using: &random)]
            guard !other.isEmpty else { return }
            let from = Int.random(in: 0..<other.count, using: &random)
            input.insert(contentsOf: other[from..<min(other.count, from + Int.random(in: 1...256, using: &random))], at: at)
        case 4: input.insert(contentsOf: input[at..<min(input.count, at + Int.random(in: 1...32, using: &random))], at: at)
        default:
            // A 32-bit field set to an edge value (lengths, counts, offsets).
            let edge: [UInt32] = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 4096, 1 << 20, (1 << 20) + 1]
            let value = edge[Int.random(in: 0..<edge.count, using: &random)]
            for i in 0..<4 where at + i < input.count { input[at + i] = UInt8(truncatingIfNeeded: value >> (24 - 8 * i)) }
        }
    }
}
