#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ReplicaCore

extension NodeDaemon {
    /// Streams state changes in the style of `drbdsetup events2`: the current state as
    /// `exists` lines, `exists -`, then a `create`/`change`/`destroy` line whenever a field
    /// changes. It waits for the runtimes' state changes (no polling); a client that goes
    /// away ends it at the next change.
    func streamEvents(_ client: Int32, now: Bool) {
        var last: [String: [String: String]] = [:]
        var first = true
        var seen = stateChanges.current
        while isRunning {
            var lines: [String] = []
            var current: Set<String> = []
            for instance in selected(nil) {
                for (kind, key, fields) in objects(of: instance) {
                    let id = kind + " " + key
                    current.insert(id)
                    let previous = last[id]
                    let changed = fields.filter { previous?[$0.0] != $0.1 }
                    if first || previous == nil {
                        lines.append("\(first ? "exists" : "create") \(kind) \(key) " + fields.map { "\($0.0):\($0.1)" }.joined(separator: " "))
                    } else if !changed.isEmpty {
                        lines.append("change \(kind) \(key) " + changed.map { "\($0.0):\($0.1)" }.joined(separator: " "))
                    }
                    last[id] = Dictionary(uniqueKeysWithValues: fields)
                }
            }
            for id in last.keys.sorted() where !current.contains(id) {
                lines.append("destroy \(id)")
                last[id] = nil
            }
            if first { lines.append("exists -") }
            first = false
            if !lines.isEmpty {
                let text = lines.joined(separator: "\n") + "\n"
                let sent = text.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                if sent < 0 { return }
            }
            if now { return }
            // Wake for the next change; every few seconds anyway, to notice a gone client.
            seen = stateChanges.wait(after: seen, seconds: 5)
            if !clientIsConnected(client) { return }
        }
    }

    /// The events2 objects of a resource: resource, devices, connection, peer devices.
    private func objects(of instance: ResourceInstance) -> [(String, String, [(String, String)])] {
        let snapshot = instance.runtime.resourceSnapshot
        let first = snapshot.volumes[0].state
        var objects: [(String, String, [(String, String)])] = [
            ("resource", "name:\(instance.name)", [("role", "\(first.role)"), ("suspended", "no")]),
        ]
        for (volume, s) in zip(instance.volumes, snapshot.volumes) {
            var fields = [("disk", "\(s.state.disk)"), ("client", "no")]
            if let error = s.lastError { fields.append(("last-error", Self.eventValue(error))) }
            objects.append(("device", "name:\(instance.name) volume:\(volume.number) minor:\(volume.minor)", fields))
        }
        let connection = first.connection >= .connected ? "Connected" : first.connection == .standAlone ? "StandAlone" : "Connecting"
        objects.append(("connection", "name:\(instance.name) peer-node-id:1 conn-name:\(instance.peerName)",
                        [("connection", connection), ("role", "\(first.peerRole)"), ("congested", snapshot.congested ? "yes" : "no")]))
        for (volume, s) in zip(instance.volumes, snapshot.volumes) {
            let replication = s.state.connection == .connected ? "Established" : s.state.connection >= .connected ? "\(s.state.connection)" : "Off"
            objects.append(("peer-device", "name:\(instance.name) peer-node-id:1 conn-name:\(instance.peerName) volume:\(volume.number)",
                            [("replication", replication), ("peer-disk", "\(s.state.peerDisk)")]))
        }
        return objects
    }

    /// A value without spaces (events2 separates fields by spaces).
    static func eventValue(_ text: String) -> String {
        text.replacingOccurrences(of: " ", with: "_")
    }

    /// False once the client closed its end.
    private func clientIsConnected(_ client: Int32) -> Bool {
        var poller = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) > 0 else { return true }
        if poller.revents & Int16(POLLHUP | POLLERR) != 0 { return false }
        var byte: UInt8 = 0
        return recv(client, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) != 0
    }
}
