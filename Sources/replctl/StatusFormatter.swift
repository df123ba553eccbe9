import Foundation
import ReplicaCore
import ReplicaNBD

/// The status forms: `/proc/drbd` (8.4), `drbdadm status` (9), and JSON.
enum StatusFormatter {
    static func thousands(_ value: Int64) -> String {
        let digits = String(value)
        var out = ""
        for (index, character) in digits.reversed().enumerated() {
            if index > 0, index % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return String(out.reversed())
    }

    /// Per-mille of the resync done.
    static func perMille(_ snapshot: ReplicationRuntime.Snapshot) -> Int64 {
        let total = max(snapshot.resyncTotalBits, 1)
        return 1000 - min(snapshot.outOfSyncBits, total) * 1000 / total
    }

    /// `/proc/drbd`, as DRBD 8.4 prints it.
    static func proc(_ instances: [ResourceInstance]) -> String {
        var out = "version: replica 0.1.0 (api:1/proto:1)\n"
        for instance in instances {
            let s = instance.volume.runtime.snapshot
            let state = s.state
            let unconfigured = state.connection == .standAlone && state.disk == .diskless && state.role == .secondary
            if unconfigured {
                out += String(format: "%2d: cs:Unconfigured\n", instance.minor)
                continue
            }
            let paused = (state.afterSyncPause ? "a" : "-") + (state.peerSyncPause ? "p" : "-") + (state.userSyncPause ? "u" : "-")
            out += String(format: "%2d: ", instance.minor) + "\(state) \(s.wireProtocol) r\(paused)--\n"
            let c = s.counters
            out += "    ns:\(c.networkSent) nr:\(c.networkReceived) dw:\(c.diskWritten) dr:\(c.diskRead) al:\(c.activityLogWrites) bm:\(c.bitmapWrites)"
            out += " lo:\(s.local) pe:\(s.peer) ua:\(s.unacknowledged) ap:\(s.application) ep:\(s.epochs) wo:f oos:\(s.outOfSyncBits * 4)\n"
            if [.syncSource, .syncTarget, .pausedSyncS, .pausedSyncT].contains(state.connection) {
                let done = perMille(s)
                let x = Int(done / 50)
                out += "\t[" + String(repeating: "=", count: max(0, x - 1)) + ">" + String(repeating: ".", count: 20 - x) + "]"
                out += String(format: " sync'ed:%3d.%d%% ", Int(done / 10), Int(done % 10))
                out += "(\(s.outOfSyncBits * 4)/\(max(s.resyncTotalBits, s.outOfSyncBits) * 4))K\n"
                let speed = instance.syncSpeed()
                let seconds = speed.recent > 0 ? s.outOfSyncBits * 4 / speed.recent : 0
                out += String(format: "\tfinish: %d:%02d:%02d speed: ", Int(seconds / 3600), Int(seconds / 60 % 60), Int(seconds % 60))
                out += "\(thousands(speed.recent)) (\(thousands(speed.average)))"
                // The SyncTarget runs the rate controller: DRBD shows what it wants.
                if state.connection == .syncTarget || state.connection == .pausedSyncT { out += " want: \(thousands(s.resyncWantKiB))" }
                out += " K/sec\n"
            }
        }
        return out
    }

    /// `drbdadm status` (DRBD 9 form); `verbose`/`statistics` add the detail fields.
    static func drbdadm(_ instances: [ResourceInstance], verbose: Bool, statistics: Bool) -> String {
        var blocks: [String] = []
        for instance in instances {
            let s = instance.volume.runtime.snapshot
            let state = s.state
            var out = "\(instance.name) role:\(state.role)"
            if verbose { out += " suspended:no" }
            out += "\n"
            if verbose { out += "    write-ordering:flush\n" }
            out += "  " + (verbose ? "volume:0 minor:\(instance.minor) " : "") + "disk:\(state.disk)"
            if verbose { out += " backing_dev:\(instance.backingDevice)" }
            // As newer drbd-utils print open:yes while /dev/drbdN is open: here, NBD clients.
            let clients = instance.openClients
            if verbose || clients > 0 { out += " open:\(clients > 0 ? "yes" : "no")" }
            if verbose { out += " nbd:\(instance.exportAddresses) nbd-clients:\(clients)" }
            out += "\n"
            if statistics {
                out += "      size:\(s.size / 1024) read:\(s.counters.diskRead) written:\(s.counters.diskWritten) al-writes:\(s.counters.activityLogWrites)"
                out += " bm-writes:\(s.counters.bitmapWrites) upper-pending:\(s.application) lower-pending:\(s.local)\n"
            }
            let connection: String
            switch state.connection {
            case .connected, .syncSource, .syncTarget, .pausedSyncS, .pausedSyncT, .wfBitMapS, .wfBitMapT, .wfSyncUUID, .startingSyncS, .startingSyncT:
                connection = ""
            case .wfConnection, .unconnected, .wfReportParams: connection = " connection:Connecting"
            default: connection = " connection:\(state.connection)"
            }
            if connection.isEmpty {
                out += "  \(instance.peerName)" + (verbose ? " connection:Connected" : "") + " role:\(state.peerRole)\n"
                var peer = "    "
                if verbose { peer += "volume:0 " }
                let replication = state.connection == .connected ? "Established" : "\(state.connection)"
                if state.connection != .connected || verbose { peer += "replication:\(replication) " }
                peer += "peer-disk:\(state.peerDisk)"
                if [.syncSource, .syncTarget, .pausedSyncS, .pausedSyncT].contains(state.connection) {
                    peer += String(format: " done:%.2f", Double(perMille(s)) / 10)
                }
                out += peer + "\n"
                if statistics {
                    out += "        received:\(s.counters.networkReceived) sent:\(s.counters.networkSent) out-of-sync:\(s.outOfSyncBits * 4)"
                    out += " pending:\(s.peer) unacked:\(s.unacknowledged)\n"
                }
            } else {
                out += "  \(instance.peerName)\(connection)\n"
            }
            blocks.append(out)
        }
        return blocks.joined(separator: "\n")
    }

    /// JSON, with the keys of `drbdsetup status --json`.
    static func json(_ instances: [ResourceInstance]) -> String {
        let objects: [[String: Any]] = instances.map { instance in
            let s = instance.volume.runtime.snapshot
            return [
                "name": instance.name, "role": "\(s.state.role)",
                "devices": [["volume": 0, "minor": instance.minor, "disk-state": "\(s.state.disk)", "size": s.size / 1024,
                             "read": s.counters.diskRead, "written": s.counters.diskWritten, "al-writes": s.counters.activityLogWrites,
                             "bm-writes": s.counters.bitmapWrites, "upper-pending": s.application, "lower-pending": s.local,
                             "open": instance.openClients > 0, "nbd-socket": instance.exports[0].address,
                             "nbd-tcp": instance.exports.count > 1 ? instance.exports[1].address : NSNull(),
                             "nbd-clients": instance.openClients]],
                "connections": [["name": instance.peerName, "connection-state": "\(s.state.connection)", "peer-role": "\(s.state.peerRole)",
                                 "peer_devices": [["volume": 0, "replication-state": "\(s.state.connection)", "peer-disk-state": "\(s.state.peerDisk)",
                                                   "received": s.counters.networkReceived, "sent": s.counters.networkSent,
                                                   "out-of-sync": s.outOfSyncBits * 4, "pending": s.peer, "unacked": s.unacknowledged,
                                                   "resync-bytes": s.counters.resyncBytes,
                                                   "percent-in-sync": s.size > 0 ? 100.0 - Double(s.outOfSyncBits * 4096) * 100 / Double(s.size) : 100.0]]]],
            ]
        }
        let data = (try? JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
