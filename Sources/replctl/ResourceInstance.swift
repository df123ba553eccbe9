import Foundation
import ReplicaCore
import ReplicaNBD
import Synchronization

/// A volume of a resource that is up in the daemon: its device minor, backing device and NBD
/// exports (`RUN_DIR/replicaMINOR`, and TCP where the host has an `nbd-address`).
final class InstanceVolume: @unchecked Sendable {
    let number: UInt16
    let minor: Int
    let backingDevice: String
    let exports: [NBDServer]
    /// The volume was a Primary without its peer when attached (MDF_PRIMARY_IND without
    /// MDF_CONNECTED_IND): `wait-connect` then waits `degr-wfc-timeout`.
    let degradedAtAttach: Bool
    /// The peer was known outdated when attached (MDF_PEER_OUT_DATED): `outdated-wfc-timeout`.
    let peerOutdatedAtAttach: Bool
    /// (time, out-of-sync bits) samples for the resync speed.
    private let marks = Mutex<[(Date, Int64)]>([])

    init(number: UInt16, minor: Int, backingDevice: String, exports: [NBDServer], foundFlags: MetadataFlags?) {
        self.number = number
        self.minor = minor
        self.backingDevice = backingDevice
        self.exports = exports
        degradedAtAttach = foundFlags.map { $0.contains(.primaryIndicator) && !$0.contains(.connectedIndicator) } ?? false
        peerOutdatedAtAttach = foundFlags?.contains(.peerOutdated) ?? false
    }

    /// NBD clients in transmission on every export (they hold the device open).
    var openClients: Int { exports.reduce(0) { $0 + $1.openClients } }

    /// Where the volume is exported (the Unix socket first).
    var exportAddresses: String { exports.map(\.address).joined(separator: ",") }

    /// Records a progress mark and returns the recent and average sync speed in KiB/s.
    func syncSpeed(outOfSyncBits left: Int64) -> (recent: Int64, average: Int64) {
        let now = Date()
        return marks.withLock { marks in
            if marks.last.map({ now.timeIntervalSince($0.0) > 0.5 }) ?? true { marks.append((now, left)) }
            if marks.count > 40 { marks.removeFirst(marks.count - 40) }
            guard let first = marks.first, let last = marks.last, last.0 > first.0 else { return (0, 0) }
            let recentStart = marks.count > 6 ? marks[marks.count - 6] : first
            let recent = Double(recentStart.1 - last.1) * 4 / max(0.001, last.0.timeIntervalSince(recentStart.0))
            let average = Double(first.1 - last.1) * 4 / max(0.001, last.0.timeIntervalSince(first.0))
            return (Int64(max(0, recent)), Int64(max(0, average)))
        }
    }
}

/// A resource that is up in the daemon: its runtime (every volume, one link) and its volumes'
/// exports.
final class ResourceInstance: @unchecked Sendable {
    let name: String
    let peerName: String
    /// The peer's `node-id` (as drbdadm assigns it when none is written: its place among the hosts).
    let peerNodeID: Int
    let runtime: ReplicationRuntime
    let volumes: [InstanceVolume]
    let started = Date()

    init(name: String, peerName: String, peerNodeID: Int, runtime: ReplicationRuntime, volumes: [InstanceVolume]) {
        self.name = name
        self.peerName = peerName
        self.peerNodeID = peerNodeID
        self.runtime = runtime
        self.volumes = volumes
    }

    /// The first volume's minor (resources are listed by it).
    var minor: Int { volumes[0].minor }

    /// NBD clients in transmission on every volume's exports.
    var openClients: Int { volumes.reduce(0) { $0 + $1.openClients } }

    /// Where the volumes are exported.
    var exportAddresses: String { volumes.map(\.exportAddresses).joined(separator: ",") }

    /// Every export of every volume.
    var exports: [NBDServer] { volumes.flatMap(\.exports) }

    /// Starts every export. False when one could not start (the caller takes the resource down).
    func startExports() -> Bool { exports.allSatisfy { $0.start() } }

    /// Stops every export; their clients are disconnected and their threads have ended.
    func stopExports() { for export in exports { export.stop() } }

    /// Takes the resource down: exports stopped, then the runtime shut down within `timeout`.
    @discardableResult
    func down(timeout: Double = 10) -> ReplicationRuntime.ShutdownReport {
        stopExports()
        return runtime.shutdown(timeout: timeout)
    }
}
