import ReplicaCore

/// What the metrics of one resource are made of: its published status and the names a scrape
/// labels it with.
public struct ResourceMetrics: Sendable {
    /// One volume: its number, its device minor, and how it is exported.
    public struct Volume: Sendable {
        /// The volume number.
        public var number: UInt16
        /// `device minor N`.
        public var minor: Int
        /// `disk none`: intentionally diskless (a "client" in DRBD 9's words).
        public var intentionallyDiskless: Bool
        /// Clients that hold the volume's export open.
        public var openClients: Int

        /// A volume.
        public init(number: UInt16, minor: Int, intentionallyDiskless: Bool, openClients: Int) {
            self.number = number
            self.minor = minor
            self.intentionallyDiskless = intentionallyDiskless
            self.openClients = openClients
        }
    }

    /// The resource's name (label `name`).
    public var name: String
    /// The peer's host name (label `conn_name`).
    public var peerName: String
    /// The peer's `node-id` (label `peer_node_id`; drbdadm's assignment when none is written).
    public var peerNodeID: Int
    /// The volumes, in the order of ``snapshot``'s.
    public var volumes: [Volume]
    /// The resource's published status (``ReplicationRuntime/resourceSnapshot``).
    public var snapshot: ResourceSnapshot

    /// The metrics of a resource.
    public init(name: String, peerName: String, peerNodeID: Int, volumes: [Volume], snapshot: ResourceSnapshot) {
        self.name = name
        self.peerName = peerName
        self.peerNodeID = peerNodeID
        self.volumes = volumes
        self.snapshot = snapshot
    }
}
