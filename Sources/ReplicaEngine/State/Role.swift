/// A node's role for a resource (`enum drbd_role`); raw values are DRBD's wire numbers.
public enum Role: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// Not known (the peer while disconnected).
    case unknown = 0
    /// Serves application I/O.
    case primary = 1
    /// Receives replication only.
    case secondary = 2

    /// DRBD's name.
    public var description: String {
        switch self {
        case .unknown: "Unknown"
        case .primary: "Primary"
        case .secondary: "Secondary"
        }
    }
}

/// DRBD 8.4 connection states (`enum drbd_conns`) with their numeric values.
public enum ConnectionState: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case standAlone = 0, disconnecting, unconnected, timeout, brokenPipe, networkFailure, protocolError, tearDown
    case wfConnection = 8, wfReportParams, connected, startingSyncS, startingSyncT, wfBitMapS, wfBitMapT, wfSyncUUID
    case syncSource = 16, syncTarget, verifyS, verifyT, pausedSyncS, pausedSyncT, ahead, behind

    /// DRBD's name, as `/proc/drbd` prints it after `cs:`.
    public var description: String {
        switch self {
        case .standAlone: "StandAlone"
        case .disconnecting: "Disconnecting"
        case .unconnected: "Unconnected"
        case .timeout: "Timeout"
        case .brokenPipe: "BrokenPipe"
        case .networkFailure: "NetworkFailure"
        case .protocolError: "ProtocolError"
        case .tearDown: "TearDown"
        case .wfConnection: "WFConnection"
        case .wfReportParams: "WFReportParams"
        case .connected: "Connected"
        case .startingSyncS: "StartingSyncS"
        case .startingSyncT: "StartingSyncT"
        case .wfBitMapS: "WFBitMapS"
        case .wfBitMapT: "WFBitMapT"
        case .wfSyncUUID: "WFSyncUUID"
        case .syncSource: "SyncSource"
        case .syncTarget: "SyncTarget"
        case .verifyS: "VerifyS"
        case .verifyT: "VerifyT"
        case .pausedSyncS: "PausedSyncS"
        case .pausedSyncT: "PausedSyncT"
        case .ahead: "Ahead"
        case .behind: "Behind"
        }
    }

    /// Looks a state up by DRBD's name.
    public init?(name: String) {
        guard let state = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = state
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// A resync is running or set up (StartingSync… to PausedSyncT, without verify).
    public var isResync: Bool {
        switch self {
        case .startingSyncS, .startingSyncT, .wfBitMapS, .wfBitMapT, .wfSyncUUID, .syncSource, .syncTarget, .pausedSyncS, .pausedSyncT: true
        default: false
        }
    }
}

/// DRBD 8.4 disk states (`enum drbd_disk_state`) with their numeric values.
public enum DiskState: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case diskless = 0, attaching, failed, negotiating, inconsistent, outdated, dUnknown, consistent, upToDate

    /// DRBD's name, as `/proc/drbd` prints it after `ds:`.
    public var description: String {
        switch self {
        case .diskless: "Diskless"
        case .attaching: "Attaching"
        case .failed: "Failed"
        case .negotiating: "Negotiating"
        case .inconsistent: "Inconsistent"
        case .outdated: "Outdated"
        case .dUnknown: "DUnknown"
        case .consistent: "Consistent"
        case .upToDate: "UpToDate"
        }
    }

    /// Looks a state up by DRBD's name.
    public init?(name: String) {
        guard let state = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = state
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}
