import ReplicaCore
import ReplicaTransportTCP

/// The transport a resource's `net { transport ...; }` names (DRBD 9's keyword; `tcp` when
/// not written), made for this node.
enum TransportChoice {
    /// The transport for `resource` on `node`.
    /// - Throws: ``ConfigError`` at the option's place for a transport this build cannot run.
    static func transport(for resource: ResourceSpec, in configuration: Configuration, node: String) throws -> any Transport {
        let net = NodeResolver(nodeName: node).netOptions(of: resource, in: configuration)
        let setting = net.last { $0.name == "transport" }
        switch setting?.value ?? "tcp" {
        case "tcp":
            return try TCPTransport.forResource(configuration, resource.name, node: node)
        case let other:
            let location = setting?.location ?? resource.location
            if other == "rdma" {
                throw ConfigError(location, "transport rdma: not supported by Replica yet (the InfiniBand verbs transport is not built; use tcp)")
            }
            throw ConfigError(location, "transport \(other): unknown transport (Replica offers tcp)")
        }
    }
}
