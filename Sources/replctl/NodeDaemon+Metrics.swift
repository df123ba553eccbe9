import ReplicaCore
import ReplicaMetrics
import ReplicaTransportTCP
import Synchronization

extension NodeDaemon {
    /// Serves Prometheus metrics of every resource that is up at `address` (`GET /metrics`),
    /// from now until the daemon stops. One endpoint per daemon: the same address again
    /// changes nothing; another one is refused (the message says which is served).
    func serveMetrics(at address: NetworkAddress) throws(DaemonFailure) {
        try metrics.withLock { (current: inout MetricsEndpoint?) throws(DaemonFailure) in
            if let current {
                guard current.address == address.hostAndPort else {
                    throw DaemonFailure("metrics-address \(address.hostAndPort): this node's daemon already serves its metrics on \(current.address) (one address per node)")
                }
                return
            }
            let endpoint: MetricsEndpoint
            do {
                endpoint = try MetricsEndpoint(endpoint: try TCPEndpoint(address)) { [weak self] in self?.metricsText() ?? "" }
            } catch {
                throw DaemonFailure("metrics-address \(address.hostAndPort): \(error)")
            }
            guard endpoint.start() else { throw DaemonFailure("metrics-address \(address.hostAndPort): no thread to serve metrics") }
            current = endpoint
        }
    }

    /// Stops the metrics endpoint, if any.
    func stopMetrics() {
        metrics.withLock { endpoint -> MetricsEndpoint? in defer { endpoint = nil }; return endpoint }?.stop()
    }

    /// The exposition of every resource that is up.
    func metricsText() -> String {
        PrometheusExposition.render(selected(nil).map { instance in
            ResourceMetrics(name: instance.name, peerName: instance.peerName, peerNodeID: instance.peerNodeID,
                            volumes: instance.volumes.map { volume in
                                ResourceMetrics.Volume(number: volume.number, minor: volume.minor,
                                                       intentionallyDiskless: volume.backingDevice == "none", openClients: volume.openClients)
                            },
                            snapshot: instance.runtime.resourceSnapshot)
        })
    }
}
