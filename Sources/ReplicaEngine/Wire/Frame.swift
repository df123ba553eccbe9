/// One frame of Replica's wire protocol, decoded.
public enum Frame: Sendable, Equatable {
    case features(FeaturesPayload)
    case protocolParameters(ProtocolParametersPayload)
    case syncParameters(SyncParametersPayload)
    case sizes(SizesPayload)
    case uuids(UUIDsPayload)
    case state(UInt32)
    case stateChangeRequest(mask: UInt32, value: UInt32)
    case stateChangeReply(Int32)
    case data(DataHeader, [UInt8])
    case barrier(epoch: UInt32)
    case barrierAck(epoch: UInt32, setSize: UInt32)
    case receiveAck(BlockAck)
    case writeAck(BlockAck)
    case resyncWriteAck(BlockAck)
    case negativeAck(BlockAck)
    case negativeDataReply(BlockAck)
    case negativeResyncReply(BlockAck)
    case dataRequest(BlockRequest)
    case resyncRequest(BlockRequest)
    case dataReply(offset: UInt64, blockID: UInt64, [UInt8])
    case resyncReply(offset: UInt64, blockID: UInt64, [UInt8])
    case syncUUID(UInt64)
    case bitmap(BitmapChunk)
    /// The same content as ``bitmap(_:)``, sent as runs (``BitmapRunLength``).
    case compressedBitmap(BitmapChunk)
    case ping
    case pingAck
    case outOfSync(offset: UInt64, size: UInt32)
    case initialData
    case initialMeta
    case disconnect
    /// Peer authentication: the random challenge the peer signs.
    case authChallenge([UInt8])
    /// Peer authentication: HMAC(shared secret, the peer's challenge).
    case authResponse([UInt8])

    /// The frame's type.
    public var type: FrameType {
        switch self {
        case .features: .features
        case .protocolParameters: .protocolParameters
        case .syncParameters: .syncParameters
        case .sizes: .sizes
        case .uuids: .uuids
        case .state: .state
        case .stateChangeRequest: .stateChangeRequest
        case .stateChangeReply: .stateChangeReply
        case .data: .data
        case .barrier: .barrier
        case .barrierAck: .barrierAck
        case .receiveAck: .receiveAck
        case .writeAck: .writeAck
        case .resyncWriteAck: .resyncWriteAck
        case .negativeAck: .negativeAck
        case .negativeDataReply: .negativeDataReply
        case .negativeResyncReply: .negativeResyncReply
        case .dataRequest: .dataRequest
        case .resyncRequest: .resyncRequest
        case .dataReply: .dataReply
        case .resyncReply: .resyncReply
        case .syncUUID: .syncUUID
        case .bitmap: .bitmap
        case .compressedBitmap: .compressedBitmap
        case .ping: .ping
        case .pingAck: .pingAck
        case .outOfSync: .outOfSync
        case .initialData: .initialData
        case .initialMeta: .initialMeta
        case .disconnect: .disconnect
        case .authChallenge: .authChallenge
        case .authResponse: .authResponse
        }
    }
}
