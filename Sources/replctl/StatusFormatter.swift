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
    static func perMille(_ snapshot: VolumeSnapshot) -> Int64 {
        let total = max(snapshot.resyncTotalBits, 1)
        return 1000 - min(snapshot.outOfSyncBits, total) * 1000 / total
    }

    /// `/proc/drbd`, as DRBD 8.4 prints it: one entry per volume (device minor).
    static func proc(_ instances: [ResourceInstance]) -> String {
        var out = "version: replica 0.1.0 (api:1/proto:1)\n"
        for instance in instances {
            for (volume, s) in zip(instance.volumes, instance.runtime.resourceSnapshot.volumes) {
                out += procEntry(volume, s)
            }
        }
        return out
    }

    private static func procEntry(_ volume: InstanceVolume, _ s: VolumeSnapshot) -> String {
        let state = s.state
        let unconfigured = state.connection == .standAlone && state.disk == .diskless && state.role == .secondary
        if unconfigured { return String(format: "%2d: cs:Unconfigured\n", volume.minor) }
        let paused = (state.afterSyncPause ? "a" : "-") + (state.peerSyncPause ? "p" : "-") + (state.userSyncPause ? "u" : "-")
        var out = String(format: "%2d: ", volume.minor) + "\(state) \(s.wireProtocol) r\(paused)--\n"
        let c = s.counters
        out += "    ns:\(c.networkSent) nr:\(c.networkReceived) dw:\(c.diskWritten) dr:\(c.diskRead) al:\(c.activityLogWrites) bm:\(c.bitmapWrites)"
        out += " lo:\(s.local) pe:\(s.peer) ua:\(s.unacknowledged) ap:\(s.application) ep:\(s.epochs) wo:f oos:\(s.outOfSyncBits * 4)\n"
        if [.syncSource, .syncTarget, .pausedSyncS, .pausedSyncT].contains(state.connection) {
            let done = perMille(s)
            let x = Int(done / 50)
            out += "\t[" + String(repeating: "=", count: max(0, x - 1)) + ">" + String(repeating: ".", count: 20 - x) + "]"
            out += String(format: " sync'ed:%3d.%d%% ", Int(done / 10), Int(done % 10))
            out += "(\(s.outOfSyncBits * 4)/\(max(s.resyncTotalBits, s.outOfSyncBits) * 4))K\n"
            let speed = volume.syncSpeed(outOfSyncBits: s.outOfSyncBits)
            let seconds = speed.recent > 0 ? s.outOfSyncBits * 4 / speed.recent : 0
            out += String(format: "\tfinish: %d:%02d:%02d speed: ", Int(seconds / 3600), Int(seconds / 60 % 60), Int(seconds % 60))
            out += "\(thousands(speed.recent)) (\(thousands(speed.average)))"
            // The SyncTarget runs the rate controller: DRBD shows what it wants.
            if state.connection == .syncTarget || state.connection == .pausedSyncT { out += " want: \(thousands(s.resyncWantKiB))" }
            out += " K/sec\n"
        }
        return out
    }

    /// `drbdadm status` (DRBD 9 form); `verbose`/`statistics` add the detail fields. Device
    /// and peer-device lines carry `volume:N` when the resource has more than one volume, a
    /// volume other than 0, or with `verbose` (as drbdsetup prints them).
    static func drbdadm(_ instances: [ResourceInstance], verbose: Bool, statistics: Bool) -> String {
        var blocks: [String] = []
        for instance in instances {
            let resource = instance.runtime.resourceSnapshot
            let first = resource.volumes[0].state
            let showVolume = verbose || resource.volumes.count > 1 || resource.volumes[0].number != 0
            var out = "\(instance.name) role:\(first.role)"
            if verbose { out += " suspended:no" }
            out += "\n"
            if verbose { out += "    write-ordering:flush\n" }
            for (volume, s) in zip(instance.volumes, resource.volumes) {
                out += "  " + (showVolume ? "volume:\(volume.number) " : "") + (verbose ? "minor:\(volume.minor) " : "") + "disk:\(s.state.disk)"
                if verbose { out += " backing_dev:\(volume.backingDevice)" }
                // As newer drbd-utils print open:yes while /dev/drbdN is open: here, NBD clients.
                let clients = volume.openClients
                if verbose || clients > 0 { out += " open:\(clients > 0 ? "yes" : "no")" }
                if verbose { out += " nbd:\(volume.exportAddresses) nbd-clients:\(clients)" }
                if verbose, let error = s.lastError { out += " last-error:\"\(error)\"" }
                out += "\n"
                if statistics {
                    out += "      size:\(s.size / 1024) read:\(s.counters.diskRead) written:\(s.counters.diskWritten) al-writes:\(s.counters.activityLogWrites)"
                    out += " bm-writes:\(s.counters.bitmapWrites) upper-pending:\(s.application) lower-pending:\(s.local)\n"
                }
            }
            let connection: String
            switch first.connection {
            case .connected, .syncSource, .syncTarget, .pausedSyncS, .pausedSyncT, .wfBitMapS, .wfBitMapT, .wfSyncUUID, .startingSyncS, .startingSyncT:
                connection = ""
            case .wfConnection, .unconnected, .wfReportParams: connection = " connection:Connecting"
            default: connection = " connection:\(first.connection)"
            }
            if connection.isEmpty {
                out += "  \(instance.peerName)" + (verbose ? " connection:Connected" : "") + " role:\(first.peerRole)"
                if verbose || resource.congested { out += " congested:\(resource.congested ? "yes" : "no")" }
                if verbose { out += " transport:\(resource.transport)" }
                if verbose || resource.tls { out += " tls:\(resource.tls ? "yes" : "no")" }
                out += "\n"
                for (volume, s) in zip(instance.volumes, resource.volumes) {
                    let state = s.state
                    var peer = "    "
                    if showVolume { peer += "volume:\(volume.number) " }
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
                }
            } else {
                out += "  \(instance.peerName)\(connection)"
                if verbose { out += " transport:\(resource.transport)" }
                if verbose || resource.tls { out += " tls:\(resource.tls ? "yes" : "no")" }
                if verbose, let failure = resource.lastConnectFailure { out += " last-connect-error:\"\(failure)\"" }
                out += "\n"
            }
            blocks.append(out)
        }
        return blocks.joined(separator: "\n")
    }

    /// JSON, with the keys of `drbdsetup status --json` (and Replica's: transport, nbd, errors).
    static func json(_ instances: [ResourceInstance]) -> String {
        let objects: [[String: Any]] = instances.map { instance in
            let resource = instance.runtime.resourceSnapshot
            let first = resource.volumes[0]
            let devices: [[String: Any]] = zip(instance.volumes, resource.volumes).map { volume, s in
                ["volume": Int(volume.number), "minor": volume.minor, "disk-state": "\(s.state.disk)", "size": s.size / 1024,
                 "read": s.counters.diskRead, "written": s.counters.diskWritten, "al-writes": s.counters.activityLogWrites,
                 "bm-writes": s.counters.bitmapWrites, "upper-pending": s.application, "lower-pending": s.local,
                 "open": volume.openClients > 0, "nbd-socket": volume.exports.first?.address ?? NSNull(),
                 "nbd-tcp": volume.exports.count > 1 ? volume.exports[1].address : NSNull(),
                 "nbd-clients": volume.openClients, "last-error": s.lastError ?? NSNull(),
                 "degraded-at-attach": volume.degradedAtAttach, "peer-outdated-at-attach": volume.peerOutdatedAtAttach]
            }
            let peerDevices: [[String: Any]] = resource.volumes.map { s in
                ["volume": Int(s.number), "replication-state": "\(s.state.connection)", "peer-disk-state": "\(s.state.peerDisk)",
                 "received": s.counters.networkReceived, "sent": s.counters.networkSent,
                 "out-of-sync": s.outOfSyncBits * 4, "pending": s.peer, "unacked": s.unacknowledged,
                 "resync-bytes": s.counters.resyncBytes,
                 "percent-in-sync": s.size > 0 ? 100.0 - Double(s.outOfSyncBits * 4096) * 100 / Double(s.size) : 100.0]
            }
            return [
                "name": instance.name, "role": "\(first.state.role)",
                "devices": devices,
                "connections": [["name": instance.peerName, "connection-state": "\(first.state.connection)", "peer-role": "\(first.state.peerRole)",
                                 "congested": resource.congested, "transport": resource.transport, "tls": resource.tls, "queued-bytes": resource.queuedBytes,
                                 "ap-in-flight": resource.applicationInFlight, "held-requests": resource.heldRequests,
                                 "last-close-reason": resource.lastCloseReason ?? NSNull(),
                                 "last-connect-error": resource.lastConnectFailure ?? NSNull(),
                                 "peer_devices": peerDevices]],
            ]
        }
        let data = (try? JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
