/// `features`: the protocol range and feature bits a node speaks.
public struct FeaturesPayload: Sendable, Equatable {
    public var protocolMin: UInt32
    public var protocolMax: UInt32
    public var featureFlags: UInt32
    public var nodeID: UInt32
    public init(protocolMin: UInt32, protocolMax: UInt32, featureFlags: UInt32, nodeID: UInt32) {
        self.protocolMin = protocolMin
        self.protocolMax = protocolMax
        self.featureFlags = featureFlags
        self.nodeID = nodeID
    }
}

/// `protocolParameters`: settings that must match on both sides (reference 1.2, end).
public struct ProtocolParametersPayload: Sendable, Equatable {
    /// 1 = A, 2 = B, 3 = C (DRBD's numbers).
    public var wireProtocol: UInt8
    public var afterSB0: UInt8
    public var afterSB1: UInt8
    public var afterSB2: UInt8
    /// 1 = discard-my-data, 2 = dry run.
    public var connectionFlags: UInt8
    public var allowTwoPrimaries: Bool
    public var integrityAlgorithm: String
    public init(wireProtocol: UInt8, afterSB0: UInt8, afterSB1: UInt8, afterSB2: UInt8, connectionFlags: UInt8,
                allowTwoPrimaries: Bool, integrityAlgorithm: String) {
        self.wireProtocol = wireProtocol
        self.afterSB0 = afterSB0
        self.afterSB1 = afterSB1
        self.afterSB2 = afterSB2
        self.connectionFlags = connectionFlags
        self.allowTwoPrimaries = allowTwoPrimaries
        self.integrityAlgorithm = integrityAlgorithm
    }
}

/// `syncParameters`: the resync controller settings (may differ between peers).
public struct SyncParametersPayload: Sendable, Equatable {
    public var resyncRate: UInt32
    public var planAhead: UInt32
    public var delayTarget: UInt32
    public var fillTarget: UInt32
    public var maxRate: UInt32
    public var verifyAlgorithm: String
    public var checksumAlgorithm: String
    public init(resyncRate: UInt32, planAhead: UInt32, delayTarget: UInt32, fillTarget: UInt32, maxRate: UInt32,
                verifyAlgorithm: String, checksumAlgorithm: String) {
        self.resyncRate = resyncRate
        self.planAhead = planAhead
        self.delayTarget = delayTarget
        self.fillTarget = fillTarget
        self.maxRate = maxRate
        self.verifyAlgorithm = verifyAlgorithm
        self.checksumAlgorithm = checksumAlgorithm
    }
}

/// `sizes`, in bytes.
public struct SizesPayload: Sendable, Equatable {
    /// Usable backing size.
    public var backingSize: UInt64
    /// Size the user configured (`size`), 0 = all.
    public var userSize: UInt64
    /// Size currently exported.
    public var currentSize: UInt64
    /// Largest request the sender accepts.
    public var maxRequestSize: UInt32
    public init(backingSize: UInt64, userSize: UInt64, currentSize: UInt64, maxRequestSize: UInt32) {
        self.backingSize = backingSize
        self.userSize = userSize
        self.currentSize = currentSize
        self.maxRequestSize = maxRequestSize
    }
}

/// `uuids`: the generation UUIDs with the number of dirty bits and flags (reference 3.1).
public struct UUIDsPayload: Sendable, Equatable {
    public var uuids: GenerationUUIDs
    public var dirtyBits: UInt64
    /// 1 discard-my-data, 2 crashed primary, 4 inconsistent, 8 skip initial sync.
    public var flags: UInt64
    public init(uuids: GenerationUUIDs, dirtyBits: UInt64, flags: UInt64) {
        self.uuids = uuids
        self.dirtyBits = dirtyBits
        self.flags = flags
    }
}

/// The header of a data-carrying frame: where, which request, ordering and flags.
public struct DataHeader: Sendable, Equatable {
    /// Byte offset on the volume.
    public var offset: UInt64
    /// The sender's request id, echoed in acks.
    public var blockID: UInt64
    /// Per-connection sequence number.
    public var sequence: UInt32
    /// `DataFlags`.
    public var flags: UInt32
    public init(offset: UInt64, blockID: UInt64, sequence: UInt32, flags: UInt32) {
        self.offset = offset
        self.blockID = blockID
        self.sequence = sequence
        self.flags = flags
    }
}

/// Flags of a data frame (DRBD's dp_flags where they exist).
public enum DataFlags {
    public static let maySetInSync: UInt32 = 4
    public static let forceUnitAccess: UInt32 = 16
    public static let flush: UInt32 = 32
    public static let discard: UInt32 = 64
    public static let sendReceiveAck: UInt32 = 128
    public static let sendWriteAck: UInt32 = 256
    public static let zeroes: UInt32 = 1024
    /// Every defined bit.
    public static let all: UInt32 = maySetInSync | forceUnitAccess | flush | discard | sendReceiveAck | sendWriteAck | zeroes
}

/// An acknowledgement of one request.
public struct BlockAck: Sendable, Equatable {
    public var offset: UInt64
    public var blockID: UInt64
    public var size: UInt32
    public var sequence: UInt32
    public init(offset: UInt64, blockID: UInt64, size: UInt32, sequence: UInt32) {
        self.offset = offset
        self.blockID = blockID
        self.size = size
        self.sequence = sequence
    }
}

/// A request for a block (remote read or resync).
public struct BlockRequest: Sendable, Equatable {
    public var offset: UInt64
    public var blockID: UInt64
    public var size: UInt32
    public init(offset: UInt64, blockID: UInt64, size: UInt32) {
        self.offset = offset
        self.blockID = blockID
        self.size = size
    }
}

/// A chunk of the bitmap: `words` cover bits `firstBit ..< firstBit + 64 × words.count`.
public struct BitmapChunk: Sendable, Equatable {
    public var firstBit: UInt64
    public var totalBits: UInt64
    public var words: [UInt64]
    public init(firstBit: UInt64, totalBits: UInt64, words: [UInt64]) {
        self.firstBit = firstBit
        self.totalBits = totalBits
        self.words = words
    }
}
