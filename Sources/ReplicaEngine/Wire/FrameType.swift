/// The frame types of Replica's wire protocol, version 1 (see docs/PROTOCOL.md).
public enum FrameType: UInt8, Sendable, CaseIterable {
    /// Feature and version negotiation, the first frame on the data channel.
    case features = 1
    /// Replication protocol and split-brain policies, checked for compatibility.
    case protocolParameters = 2
    /// Resync controller parameters.
    case syncParameters = 3
    /// Device sizes.
    case sizes = 4
    /// Generation UUIDs, dirty bits and flags.
    case uuids = 5
    /// The sender's state (P_STATE encoding).
    case state = 6
    /// A cluster-wide state change request (mask, value).
    case stateChangeRequest = 7
    /// The answer to a state change request.
    case stateChangeReply = 8
    /// A replicated application write (header + data).
    case data = 9
    /// Closes a write epoch.
    case barrier = 10
    /// An epoch is on stable storage.
    case barrierAck = 11
    /// Protocol B: data received.
    case receiveAck = 12
    /// Protocol C: data written.
    case writeAck = 13
    /// A write acknowledged that also marks its range in sync (resync).
    case resyncWriteAck = 14
    /// A write failed on the peer.
    case negativeAck = 15
    /// A read request failed on the peer.
    case negativeDataReply = 16
    /// A resync read failed on the source.
    case negativeResyncReply = 17
    /// Read a block from the peer.
    case dataRequest = 18
    /// A sync target asks for a block.
    case resyncRequest = 19
    /// Answer to a data request (header + data).
    case dataReply = 20
    /// Answer to a resync request (header + data).
    case resyncReply = 21
    /// The new current UUID for the sync target.
    case syncUUID = 22
    /// A chunk of the out-of-sync bitmap.
    case bitmap = 23
    /// Liveness probe on the meta channel.
    case ping = 24
    /// Answer to a ping.
    case pingAck = 25
    /// Ahead mode: a range written without replication.
    case outOfSync = 26
    /// Classifies a fresh TCP stream as the data channel.
    case initialData = 27
    /// Classifies a fresh TCP stream as the meta channel.
    case initialMeta = 28
    /// Graceful disconnect.
    case disconnect = 29
    /// A chunk of the out-of-sync bitmap as runs (``BitmapRunLength``).
    case compressedBitmap = 30
    /// Peer authentication (`cram-hmac-alg`): random bytes the peer must prove it can sign
    /// with the shared secret. Exchanged on each new stream before the link is made.
    case authChallenge = 31
    /// Peer authentication: HMAC(shared secret, the peer's challenge).
    case authResponse = 32

    /// The channel the frame travels on.
    public var channel: Channel {
        switch self {
        case .ping, .pingAck, .receiveAck, .writeAck, .resyncWriteAck, .negativeAck, .negativeDataReply,
             .negativeResyncReply, .barrierAck, .stateChangeReply, .initialMeta:
            .meta
        default:
            .data
        }
    }

    /// Bytes of fixed payload; data-carrying frames add their data after it.
    public var fixedPayloadSize: Int {
        switch self {
        case .features: 16
        case .protocolParameters: 8 + FrameLimits.algorithmNameSize
        case .syncParameters: 20 + 2 * FrameLimits.algorithmNameSize
        case .sizes: 28
        case .uuids: 48
        case .state: 4
        case .stateChangeRequest: 8
        case .stateChangeReply: 4
        case .data: 24
        case .barrier: 4
        case .barrierAck: 8
        case .receiveAck, .writeAck, .resyncWriteAck, .negativeAck, .negativeDataReply, .negativeResyncReply: 24
        case .dataRequest, .resyncRequest: 20
        case .dataReply, .resyncReply: 16
        case .syncUUID: 8
        case .bitmap: 20
        case .compressedBitmap: 21
        case .ping, .pingAck, .initialData, .initialMeta, .disconnect: 0
        case .outOfSync: 12
        case .authChallenge, .authResponse: 0
        }
    }

    /// Most data bytes that may follow the fixed payload.
    public var maximumDataSize: Int {
        switch self {
        case .data, .dataReply, .resyncReply: FrameLimits.maximumRequestSize
        case .bitmap, .compressedBitmap: FrameLimits.bitmapChunkSize
        case .authChallenge, .authResponse: FrameLimits.authenticationBytes
        default: 0
        }
    }
}

/// The two channels (TCP connections, or queue pairs) between peers.
public enum Channel: Sendable, Hashable {
    /// Bulk: handshake, data, resync, bitmap.
    case data
    /// Control: acks and pings, never queued behind bulk data.
    case meta
}

/// Size limits of the wire protocol.
public enum FrameLimits {
    /// Largest application or resync request: 1 MiB.
    public static let maximumRequestSize = 1 << 20
    /// Largest bitmap chunk payload.
    public static let bitmapChunkSize = 4096
    /// Bytes reserved for an algorithm name (NUL padded).
    public static let algorithmNameSize = 64
    /// Most bytes of an authentication challenge or response (DRBD accepts challenges of
    /// 64...128 bytes; the longest HMAC, SHA-512's, is 64).
    public static let authenticationBytes = 128
    /// Sector size: offsets and lengths of I/O must be multiples of it.
    public static let sectorSize = 512
}
