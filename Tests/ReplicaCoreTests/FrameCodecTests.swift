import Foundation
import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Wire frames")
struct FrameCodecTests {
    static let samples: [Frame] = [
        .features(FeaturesPayload(protocolMin: 1, protocolMax: 1, featureFlags: 0x3, nodeID: 1)),
        .protocolParameters(ProtocolParametersPayload(wireProtocol: 3, afterSB0: 3, afterSB1: 8, afterSB2: 0, connectionFlags: 1, allowTwoPrimaries: true, integrityAlgorithm: "crc32c")),
        .syncParameters(SyncParametersPayload(resyncRate: 250, planAhead: 20, delayTarget: 10, fillTarget: 100, maxRate: 102_400, verifyAlgorithm: "sha1", checksumAlgorithm: "")),
        .sizes(SizesPayload(backingSize: 1 << 30, userSize: 0, currentSize: 1 << 30, maxRequestSize: 1 << 20)),
        .uuids(UUIDsPayload(uuids: GenerationUUIDs(current: 0xA1, bitmap: 0xB0, historyStart: 0xC0, historyEnd: 0xD0), dirtyBits: 42, flags: 8)),
        .state(ResourceState(role: .primary, peerRole: .secondary, connection: .connected, disk: .upToDate, peerDisk: .upToDate).wireValue),
        .stateChangeRequest(mask: 3, value: 1),
        .stateChangeReply(-2),
        .data(DataHeader(offset: 8192, blockID: 77, sequence: 5, flags: DataFlags.sendWriteAck), [UInt8](repeating: 0x5A, count: 4096)),
        .data(DataHeader(offset: 0, blockID: 78, sequence: 6, flags: DataFlags.flush), []),
        .barrier(epoch: 9),
        .barrierAck(epoch: 9, setSize: 12),
        .receiveAck(BlockAck(offset: 4096, blockID: 1, size: 4096, sequence: 2)),
        .writeAck(BlockAck(offset: 4096, blockID: 1, size: 4096, sequence: 2)),
        .resyncWriteAck(BlockAck(offset: 0, blockID: UInt64.max, size: 1 << 20, sequence: 0)),
        .negativeAck(BlockAck(offset: 512, blockID: 3, size: 512, sequence: 1)),
        .negativeDataReply(BlockAck(offset: 512, blockID: 3, size: 512, sequence: 1)),
        .negativeResyncReply(BlockAck(offset: 512, blockID: 3, size: 512, sequence: 1)),
        .dataRequest(BlockRequest(offset: 1 << 20, blockID: 4, size: 65536)),
        .resyncRequest(BlockRequest(offset: 1 << 20, blockID: 4, size: 1 << 20)),
        .dataReply(offset: 1 << 20, blockID: 4, [UInt8](repeating: 1, count: 512)),
        .resyncReply(offset: 1 << 20, blockID: 4, [UInt8](repeating: 2, count: 1 << 20)),
        .syncUUID(0xDEAD_BEEF_0000_0000),
        .bitmap(BitmapChunk(firstBit: 128, totalBits: 4096, words: [1, 0, ~0])),
        .compressedBitmap(BitmapChunk(firstBit: 64, totalBits: 1 << 20, words: [0xF0, 0, 0, ~0, ~0, 1 << 63, 0])),
        .ping, .pingAck, .outOfSync(offset: 4096, size: 8192), .initialData, .initialMeta, .disconnect,
        .authChallenge(Array(0..<64)), .authResponse(Array(repeating: 0xA5, count: 32)),
    ]

    @Test func everyTypeHasASample() {
        #expect(Set(Self.samples.map(\.type)) == Set(FrameType.allCases))
    }

    @Test(arguments: samples)
    func roundTrip(frame: Frame) throws {
        let (headerBytes, payload) = FrameCodec.encode(frame, volume: 3)
        #expect(headerBytes.count == 16)
        let header = try FrameHeader(bytes: headerBytes)
        #expect(header.type == frame.type && header.volume == 3 && Int(header.length) == payload.count)
        #expect(try FrameCodec.decode(header, payload: payload) == frame)
    }

    @Test func acksAndPingsTravelOnTheMetaChannel() {
        #expect(FrameType.writeAck.channel == .meta && FrameType.ping.channel == .meta && FrameType.barrierAck.channel == .meta)
        #expect(FrameType.data.channel == .data && FrameType.barrier.channel == .data && FrameType.resyncRequest.channel == .data)
    }

    func headerError(_ mutate: (inout [UInt8]) -> Void) -> String? {
        var bytes = FrameHeader(type: .data, volume: 0, length: 24 + 4096).encoded()
        mutate(&bytes)
        do {
            _ = try FrameHeader(bytes: bytes)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func hostileHeadersAreRejected() {
        #expect(headerError { $0[0] = 0 }?.contains("wrong magic") == true)
        #expect(headerError { $0[4] = 2 }?.contains("unsupported protocol version 2") == true)
        #expect(headerError { $0[5] = 200 }?.contains("unknown frame type 200") == true)
        #expect(headerError { $0[6] = 1 }?.contains("reserved") == true)
        #expect(headerError { $0[12...15] = [0x00, 0x20, 0x00, 0x00] }?.contains("allowed 24...1048600") == true)
        #expect(headerError { $0[12...15] = [0xFF, 0xFF, 0xFF, 0xFF] } != nil)
        #expect(headerError { $0[12...15] = [0, 0, 0, 8] }?.contains("8 payload bytes") == true)
        #expect(headerError { $0.removeLast() }?.contains("15 bytes") == true)
    }

    func payloadError(_ type: FrameType, _ payload: [UInt8]) -> String? {
        do {
            _ = try FrameCodec.decode(FrameHeader(type: type, volume: 0, length: UInt32(payload.count)), payload: payload)
            return nil
        } catch {
            return error.description
        }
    }

    /// Found by `make fuzz` (frames): a bitmap chunk claiming 2^64 - 1 bits overflowed the
    /// bounds check (`total - first + 63`) and crashed the decoder; it must decode or be
    /// refused, never trap.
    @Test func aBitmapOfTwoToTheSixtyFourBitsDoesNotOverflow() throws {
        var payload = [UInt8](repeating: 0, count: 8) + [UInt8](repeating: 0xFF, count: 8) + [0, 0, 0, 1] + [0]
        payload += [0x40]  // one run of 64 zero bits
        let frame = try FrameCodec.decode(FrameHeader(type: .compressedBitmap, volume: 0, length: UInt32(payload.count)), payload: payload)
        #expect(frame == .compressedBitmap(BitmapChunk(firstBit: 0, totalBits: .max, words: [0])))
        var plain = [UInt8](repeating: 0, count: 8) + [UInt8](repeating: 0xFF, count: 8) + [0, 0, 0, 1]
        plain += [UInt8](repeating: 0, count: 8)
        #expect(try FrameCodec.decode(FrameHeader(type: .bitmap, volume: 0, length: UInt32(plain.count)), payload: plain)
                == .bitmap(BitmapChunk(firstBit: 0, totalBits: .max, words: [0])))
        // The fuzzer's own input.
        let input = try #require(FileManager.default.contents(atPath: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/Corpus/frames/crash-bitmap-of-2-64-bits").path))
        let bytes = Array(input)
        let header = try FrameHeader(bytes: Array(bytes.prefix(16)))
        _ = try? FrameCodec.decode(header, payload: Array(bytes.dropFirst(16).prefix(Int(header.length))))
    }

    /// Found by `make fuzz` (engine): a resync write ack at offset 2^64 - 512 decoded and then
    /// trapped the engine converting it to a signed offset; such acks are refused at decoding.
    @Test func anAckBeyondASignedOffsetIsRefused() {
        for type in [FrameType.receiveAck, .writeAck, .resyncWriteAck, .negativeAck, .negativeDataReply, .negativeResyncReply] {
            let payload = FrameCodec.encode(.writeAck(BlockAck(offset: UInt64.max - 511, blockID: 1, size: 512, sequence: 0))).payload
            #expect(payloadError(type, payload)?.contains("out of range") == true, "\(type)")
            let last = FrameCodec.encode(.writeAck(BlockAck(offset: UInt64(Int64.max) - 1023, blockID: 1, size: 512, sequence: 0))).payload
            #expect(payloadError(type, last) == nil, "\(type)")
        }
    }

    @Test func hostilePayloadsAreRejected() {
        let unaligned = FrameCodec.encode(.data(DataHeader(offset: 100, blockID: 1, sequence: 1, flags: 0), [UInt8](repeating: 0, count: 512))).payload
        #expect(payloadError(.data, unaligned)?.contains("not 512-byte aligned") == true)
        let oddLength = FrameCodec.encode(.data(DataHeader(offset: 0, blockID: 1, sequence: 1, flags: 0), [UInt8](repeating: 0, count: 100))).payload
        #expect(payloadError(.data, oddLength)?.contains("not 512-byte aligned") == true)
        var flags = FrameCodec.encode(.data(DataHeader(offset: 0, blockID: 1, sequence: 1, flags: 0), [])).payload
        flags[23] = 0x01
        #expect(payloadError(.data, flags)?.contains("unknown flags") == true)
        var name = FrameCodec.encode(Self.samples[1]).payload
        for i in 8..<(8 + 64) { name[i] = 0x41 }
        #expect(payloadError(.protocolParameters, name)?.contains("not NUL-terminated") == true)
        var protocolD = FrameCodec.encode(Self.samples[1]).payload
        protocolD[0] = 4
        #expect(payloadError(.protocolParameters, protocolD)?.contains("not A, B or C") == true)
        #expect(payloadError(.state, [0, 0, 0xFF, 0xFF]) != nil)
        #expect(payloadError(.resyncRequest, FrameCodec.encode(.resyncRequest(BlockRequest(offset: 0, blockID: 1, size: 0))).payload)?.contains("0 bytes") == true)
        #expect(payloadError(.resyncRequest, FrameCodec.encode(.resyncRequest(BlockRequest(offset: 0, blockID: 1, size: 2 << 20))).payload) != nil)
        var bitmap = FrameCodec.encode(.bitmap(BitmapChunk(firstBit: 0, totalBits: 64, words: [1, 2]))).payload
        #expect(payloadError(.bitmap, bitmap)?.contains("does not fit") == true)
        bitmap[19] = 9
        #expect(payloadError(.bitmap, bitmap)?.contains("announces 9 words") == true)
        #expect(payloadError(.uuids, [UInt8](repeating: 0, count: 40)) != nil)
    }

    @Test func randomBytesNeverCrashTheDecoder() {
        var generator = SystemRandomNumberGenerator()
        var accepted = 0
        for _ in 0..<20_000 {
            var header = FrameHeader(type: FrameType.allCases.randomElement(using: &generator)!, volume: 0, length: 0).encoded()
            // Random corruption of the header.
            if Int.random(in: 0..<4, using: &generator) == 0 { header[Int.random(in: 0..<16, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            let length = Int.random(in: 0..<300, using: &generator)
            header[12...15] = [0, 0, UInt8(length >> 8), UInt8(length & 0xFF)]
            let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            guard let decoded = try? FrameHeader(bytes: header) else { continue }
            if (try? FrameCodec.decode(decoded, payload: payload)) != nil { accepted += 1 }
        }
        #expect(accepted > 0)
    }
}

extension Frame: CustomTestStringConvertible {
    public var testDescription: String { "\(type)" }
}
