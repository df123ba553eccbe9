import ReplicaCore

/// Replica's TCP transport: a ``StreamTransport`` over ``TCPConnector`` — two TCP connections
/// per link (data and meta), IPv4 or IPv6.
public typealias TCPTransport = StreamTransport<TCPConnector>

extension StreamTransport where Connector == TCPConnector {
    /// A transport between `local` and `peer`, securing its streams with `security` (TLS) and
    /// authenticating the peer with `authentication` (`cram-hmac-alg`) when given.
    public convenience init(local: NetworkAddress, peer: NetworkAddress, options: StreamTransportOptions = StreamTransportOptions(),
                            sendBufferSize: Int = 0, receiveBufferSize: Int = 0, security: (any StreamSecurity)? = nil, authentication: PeerAuthentication? = nil) throws(TransportError) {
        var connector: TCPConnector
        do {
            connector = TCPConnector(local: try TCPEndpoint(local), peer: try TCPEndpoint(peer))
        } catch {
            throw TransportError("\(error)")
        }
        connector.sendBufferSize = sendBufferSize
        connector.receiveBufferSize = receiveBufferSize
        self.init(connector: connector, options: options, security: security, authentication: authentication)
    }

    /// True when this node connects (its address sorts higher).
    public var isActive: Bool { connector.dials }
}
