/// Why a state change was refused (`enum drbd_state_rv`), with DRBD's code and message.
public enum StateChangeError: Int, Error, Sendable, CaseIterable, CustomStringConvertible {
    case twoPrimaries = -1
    case noUpToDateDisk = -2
    case noLocalDisk = -4
    case noRemoteDisk = -5
    case connectedOutdates = -6
    case primaryNop = -7
    case resyncRunning = -8
    case alreadyStandAlone = -9
    case failedByPeer = -10
    case isDiskless = -11
    case deviceInUse = -12
    case noNetConfig = -13
    case noVerifyAlgorithm = -14
    case needConnection = -15
    case lowerThanOutdated = -16
    case notSupported = -17
    case inTransientState = -18
    case concurrentStateChange = -19

    /// DRBD's numeric return code.
    public var code: Int { rawValue }

    /// DRBD's user-visible message.
    public var description: String {
        switch self {
        case .twoPrimaries: "Multiple primaries not allowed by config"
        case .noUpToDateDisk: "Need access to UpToDate data"
        case .noLocalDisk: "Can not resync without local disk"
        case .noRemoteDisk: "Can not resync without remote disk"
        case .connectedOutdates: "Refusing to be Outdated while Connected"
        case .primaryNop: "Refusing to be Primary while peer is not outdated"
        case .resyncRunning: "Can not start OV/resync since it is already active"
        case .alreadyStandAlone: "Can not disconnect a StandAlone device"
        case .failedByPeer: "State change was refused by peer node"
        case .isDiskless: "Device is diskless, the requested operation requires a disk"
        case .deviceInUse: "Device is held open by someone"
        case .noNetConfig: "Have no net/connection configuration"
        case .noVerifyAlgorithm: "Need a verify algorithm to start online verify"
        case .needConnection: "Need a connection to start verify or resync"
        case .lowerThanOutdated: "Disk state is lower than outdated"
        case .notSupported: "Peer does not support protocol"
        case .inTransientState: "In transient state, retry after next state change"
        case .concurrentStateChange: "Concurrent state changes detected and aborted"
        }
    }

    /// The rule of reference 2.2 that produced this error, for log lines and tests.
    public var rule: String {
        switch self {
        case .twoPrimaries: "no two Primaries without allow-two-primaries"
        case .deviceInUse: "no Secondary while the device is open"
        case .noUpToDateDisk: "no Primary without access to UpToDate data"
        case .primaryNop: "with fencing, no disconnected Primary unless the peer is known outdated"
        case .noLocalDisk: "no resync without a local disk"
        case .noRemoteDisk: "no resync without a peer disk"
        case .connectedOutdates: "no Outdated disk while Connected (or peer unknown while Connected)"
        case .noVerifyAlgorithm: "no online verify without verify-alg"
        case .notSupported: "online verify needs protocol 88 or newer"
        case .needConnection: "starting a sync needs a connected peer"
        case .resyncRunning: "no new resync while one runs"
        case .alreadyStandAlone: "a StandAlone resource cannot disconnect"
        case .inTransientState: "only Unconnected or Disconnecting may follow a disconnect reason"
        default: description
        }
    }
}
