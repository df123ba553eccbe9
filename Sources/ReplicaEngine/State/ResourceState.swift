/// The state of one volume as DRBD 8.4 sees it: both roles, the connection, both disks and
/// the suspend / sync-pause flags (the fields of `union drbd_state`).
public struct ResourceState: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// This node's role.
    public var role: Role
    /// The peer's role.
    public var peerRole: Role
    /// The connection state.
    public var connection: ConnectionState
    /// This node's disk.
    public var disk: DiskState
    /// The peer's disk.
    public var peerDisk: DiskState
    /// I/O suspended by the user.
    public var suspendedByUser = false
    /// Sync paused because of `resync-after`.
    public var afterSyncPause = false
    /// Sync paused by the peer.
    public var peerSyncPause = false
    /// Sync paused by the user.
    public var userSyncPause = false

    /// Creates a state.
    public init(role: Role = .secondary, peerRole: Role = .unknown, connection: ConnectionState = .standAlone,
                disk: DiskState = .diskless, peerDisk: DiskState = .dUnknown) {
        self.role = role
        self.peerRole = peerRole
        self.connection = connection
        self.disk = disk
        self.peerDisk = peerDisk
    }

    /// `cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate`, the `/proc/drbd` form.
    public var description: String {
        "cs:\(connection) ro:\(role)/\(peerRole) ds:\(disk)/\(peerDisk)"
    }

    /// The 32-bit P_STATE encoding (reference 2.1).
    public var wireValue: UInt32 {
        var value = UInt32(role.rawValue) | UInt32(peerRole.rawValue) << 2 | UInt32(connection.rawValue) << 4
        value |= UInt32(disk.rawValue) << 9 | UInt32(peerDisk.rawValue) << 13
        if suspendedByUser { value |= 1 << 17 }
        if afterSyncPause { value |= 1 << 18 }
        if peerSyncPause { value |= 1 << 19 }
        if userSyncPause { value |= 1 << 20 }
        return value
    }

    /// Decodes a P_STATE value; nil when a field holds no valid state.
    public init?(wireValue: UInt32) {
        guard let role = Role(rawValue: Int(wireValue & 3)), let peer = Role(rawValue: Int(wireValue >> 2 & 3)),
              let connection = ConnectionState(rawValue: Int(wireValue >> 4 & 0x1F)),
              let disk = DiskState(rawValue: Int(wireValue >> 9 & 0xF)), let peerDisk = DiskState(rawValue: Int(wireValue >> 13 & 0xF))
        else { return nil }
        self.init(role: role, peerRole: peer, connection: connection, disk: disk, peerDisk: peerDisk)
        suspendedByUser = wireValue & 1 << 17 != 0
        afterSyncPause = wireValue & 1 << 18 != 0
        peerSyncPause = wireValue & 1 << 19 != 0
        userSyncPause = wireValue & 1 << 20 != 0
    }
}
