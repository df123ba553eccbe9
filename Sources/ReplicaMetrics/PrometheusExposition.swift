import Prometheus
import ReplicaCore

/// The Prometheus text exposition of Replica's resources, under drbd-reactor's metric names
/// and labels where one exists (so that dashboards made for it work: `name`, `volume`,
/// `minor`, `conn_name`, `peer_node_id`; a state as one series per possible value, the one that
/// holds set to 1, labelled with the metric's own name), and `replica_` names for what it has
/// no name for. drbd-reactor's metrics Replica has nothing behind are left out rather than
/// made up: `drbd_resource_promotionscore`, `drbd_connection_apinflight_bytes` and
/// `drbd_connection_rsinflight_bytes` (Replica counts requests, not their bytes).
public enum PrometheusExposition {
    /// The exposition (text format 0.0.4) of `resources`.
    public static func render(_ resources: [ResourceMetrics]) -> String {
        let registry = PrometheusCollectorRegistry()
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "drbd_resource_resources", unitName: "", helpText: "Number of resources")).set(Int64(resources.count))
        for resource in resources { add(resource, to: registry) }
        return registry.emitToString()
    }

    /// The MIME type of ``render(_:)``'s text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private static func add(_ resource: ResourceMetrics, to registry: PrometheusCollectorRegistry) {
        let snapshot = resource.snapshot
        guard let first = snapshot.volumes.first else { return }
        let name = [("name", resource.name)]
        let state = first.state
        oneOf("drbd_resource_role", help: "Role of the resource", Role.allCases.map(\.description), state.role.description, name, registry)
        gauge("drbd_resource_suspended", help: "1 while I/O of the resource is suspended", state.suspendedByUser, name, registry)
        let mayPromote = state.role == .secondary && state.disk == .upToDate && state.peerRole != .primary
        gauge("drbd_resource_maypromote", help: "1 while the resource could be promoted to Primary (UpToDate here, the peer not Primary)", mayPromote, name, registry)

        let connection = name + [("conn_name", resource.peerName), ("peer_node_id", "\(resource.peerNodeID)")]
        oneOf("drbd_connection_state", help: "State of the connection (DRBD 9's names)", connectionStates, connectionState(state.connection), connection, registry)
        oneOf("replica_connection_replication_state", help: "Replication state of the connection (DRBD 8.4's cs: names, as /proc/drbd shows)",
              ConnectionState.allCases.map(\.description), state.connection.description, connection, registry)
        gauge("drbd_connection_congested", help: "1 while application writes wait for the link's queue (max-buffers) or max-io-depth",
              snapshot.congested, connection, registry)
        makeGauge("replica_connection_queued_bytes", help: "Bytes queued on the link toward the peer", connection, registry)
            .set(Int64(snapshot.queuedBytes))
        makeGauge("replica_connection_apinflight_requests", help: "Application requests in the engines", connection, registry)
            .set(Int64(snapshot.applicationInFlight))
        makeCounter("replica_connection_state_changes_total", help: "Changes of the connection state since the resource came up", connection, registry)
            .increment(by: Int64(snapshot.connectionStateChanges))

        for (volume, status) in zip(resource.volumes, snapshot.volumes) {
            let device = name + [("volume", "\(volume.number)"), ("minor", "\(volume.minor)")]
            let counters = status.counters
            oneOf("drbd_device_state", help: "Disk state of the device", DiskState.allCases.map(\.description), status.state.disk.description, device, registry)
            gauge("drbd_device_client", help: "1 for an intentionally diskless device (disk none)", volume.intentionallyDiskless, device, registry)
            gauge("drbd_device_unintentionaldiskless", help: "1 for a device that lost its disk (detached)",
                  !volume.intentionallyDiskless && status.state.disk == .diskless, device, registry)
            gauge("drbd_device_quorum", help: "1 when the device has quorum (Replica has no quorum: always 1, as DRBD without it)", true, device, registry)
            gauge("drbd_device_open", help: "1 while a client holds the device's export open", volume.openClients > 0, device, registry)
            makeGauge("drbd_device_size_bytes", help: "Size of the device in bytes", device, registry).set(status.size)
            counter("drbd_device_read_bytes_total", help: "Bytes read from the local disk", counters.diskRead * 1024, device, registry)
            counter("drbd_device_written_bytes_total", help: "Bytes written to the local disk", counters.diskWritten * 1024, device, registry)
            counter("drbd_device_alwrites_total", help: "Activity-log transactions written to the meta-data", counters.activityLogWrites, device, registry)
            counter("drbd_device_bmwrites_total", help: "Bitmap writes to the meta-data", counters.bitmapWrites, device, registry)
            makeGauge("drbd_device_upperpending", help: "Application requests in the engine, not answered yet", device, registry).set(Int64(status.application))
            makeGauge("drbd_device_lowerpending", help: "Requests to the local disk not completed yet", device, registry).set(Int64(status.local))
            gauge("drbd_device_alsuspended", help: "1 while the activity log is suspended (never in Replica)", false, device, registry)

            let peerDevice = connection + [("volume", "\(volume.number)")]
            makeGauge("drbd_peerdevice_outofsync_bytes", help: "Bytes out of sync with the peer, by the bitmap", peerDevice, registry)
                .set(status.outOfSyncBits * 4096)
            counter("drbd_peerdevice_sent_bytes", help: "Bytes sent to the peer", counters.networkSent * 1024, peerDevice, registry)
            counter("drbd_peerdevice_received_bytes", help: "Bytes received from the peer", counters.networkReceived * 1024, peerDevice, registry)
            oneOf("replica_peerdevice_disk_state", help: "The peer's disk state as this node knows it", DiskState.allCases.map(\.description),
                  status.state.peerDisk.description, peerDevice, registry)
            counter("replica_peerdevice_resync_bytes_total", help: "Resync data sent (SyncSource) or written (SyncTarget) since attach",
                    counters.resyncBytes, peerDevice, registry)
            makeGauge("replica_peerdevice_resync_total_bytes", help: "Bytes to resync when the current resync started (0 when none runs)", peerDevice, registry)
                .set(resyncing(status.state.connection) ? max(status.resyncTotalBits, status.outOfSyncBits) * 4096 : 0)
            makeGauge("replica_peerdevice_unacked", help: "Requests sent to the peer and not answered yet (ua)", peerDevice, registry).set(Int64(status.unacknowledged))
            makeGauge("replica_peerdevice_pending", help: "Requests from the peer not answered yet (pe)", peerDevice, registry).set(Int64(status.peer))
        }
    }

    /// DRBD 9's connection states (`drbdsetup events2`'s `connection:`).
    static let connectionStates = ["StandAlone", "Disconnecting", "Unconnected", "Timeout", "BrokenPipe", "NetworkFailure",
                                   "ProtocolError", "TearDown", "Connecting", "Connected"]

    /// DRBD 9's name of an 8.4 connection state: the waits before a connection are
    /// `Connecting`; every state of a connection up (resync, verify included) is `Connected`
    /// (DRBD 9 shows those as the peer device's replication state).
    static func connectionState(_ state: ConnectionState) -> String {
        switch state {
        case .wfConnection, .wfReportParams: "Connecting"
        case let up where up >= .connected: "Connected"
        default: state.description
        }
    }

    private static func resyncing(_ state: ConnectionState) -> Bool {
        [.syncSource, .syncTarget, .pausedSyncS, .pausedSyncT].contains(state)
    }

    /// One series per value of a state, labelled with the metric's name: 1 for `current`.
    private static func oneOf(_ metric: String, help: String, _ values: [String], _ current: String, _ labels: [(String, String)],
                              _ registry: PrometheusCollectorRegistry) {
        for value in values {
            makeGauge(metric, help: help, labels + [(metric, value)], registry).set(Int64(value == current ? 1 : 0))
        }
    }

    private static func makeGauge(_ metric: String, help: String, _ labels: [(String, String)], _ registry: PrometheusCollectorRegistry) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: metric, unitName: "", helpText: help), labels: labels)
    }

    private static func makeCounter(_ metric: String, help: String, _ labels: [(String, String)], _ registry: PrometheusCollectorRegistry) -> Counter {
        registry.makeCounter(descriptor: MetricNameDescriptor(metricName: metric, unitName: "", helpText: help), labels: labels)
    }

    private static func gauge(_ metric: String, help: String, _ value: Bool, _ labels: [(String, String)], _ registry: PrometheusCollectorRegistry) {
        makeGauge(metric, help: help, labels, registry).set(Int64(value ? 1 : 0))
    }

    private static func counter(_ metric: String, help: String, _ value: UInt64, _ labels: [(String, String)], _ registry: PrometheusCollectorRegistry) {
        makeCounter(metric, help: help, labels, registry).increment(by: Int64(clamping: value))
    }
}
