import ReplicaCore

extension StreamTransport where Connector == TCPConnector {
    /// The transport of a two-node resource for `node`: this node's address, the other host's
    /// address, and `connect-int`, `sndbuf-size`, `rcvbuf-size` and `max-buffers` (the link's
    /// queue), TLS (`tls yes`, ``TLSStreamSecurity``) and peer authentication (`cram-hmac-alg`)
    /// from the resource's `net` options.
    public static func forResource(_ configuration: Configuration, _ name: String, node: String) throws -> TCPTransport {
        guard let resource = configuration.resource(named: name) else {
            throw TransportError("no resource named \(name) in \(configuration.file)")
        }
        let resolver = NodeResolver(nodeName: node)
        let me = try resolver.host(in: resource)
        guard let local = me.effectiveAddress else { throw TransportError("\(me.label) of resource \(name) has no address") }
        guard let other = resource.hosts.first(where: { $0 != me }), let peer = other.effectiveAddress else {
            throw TransportError("resource \(name) has no peer host with an address")
        }
        let net = resolver.netOptions(of: resource, in: configuration)
        func number(_ option: String, unitBytes: Int64) -> Int? {
            net.last { $0.name == option }.flatMap { OptionValueParser.number($0.value, unitBytes: unitBytes) }.map { Int($0) }
        }
        var options = StreamTransportOptions()
        if let seconds = number("connect-int", unitBytes: 1) { options.connectIntervalMilliseconds = seconds * 1000 }
        options.drainMarkBytes = LinkLimits(net: net).drainMarkBytes
        return try TCPTransport(local: local, peer: peer, options: options,
                                sendBufferSize: number("sndbuf-size", unitBytes: 1) ?? 0, receiveBufferSize: number("rcvbuf-size", unitBytes: 1) ?? 0,
                                security: try security(net, peerName: other.names.first ?? other.label), authentication: try authentication(net))
    }

    /// TLS as `tls yes` and the `tls-*` options ask for it, expecting the peer's certificate
    /// to name `peerName`; nil without `tls yes`. The files are loaded now: a file that cannot
    /// be read, a key that is not the certificate's, an unknown cipher suite is an error at
    /// the option's place.
    static func security(_ net: [OptionSetting], peerName: String) throws -> (any StreamSecurity)? {
        try ResourceSupport.checkTLS(net)
        func last(_ name: String) -> OptionSetting? { net.last { $0.name == name && !$0.value.isEmpty } }
        guard let tls = last("tls"), tls.value == "yes", let certificate = last("tls-certificate"), let key = last("tls-privkey") else { return nil }
        let settings = TLSSettings(certificateFile: certificate.value, privateKeyFile: key.value, caFile: last("tls-ca")?.value,
                                   peerFingerprint: last("tls-peer-fingerprint").flatMap { HexText.fingerprint($0.value) },
                                   cipherSuites: last("tls-ciphersuites")?.value)
        do {
            return TLSStreamSecurity(context: try TLSContext(settings), peerName: peerName)
        } catch {
            throw ConfigError(last(error.option)?.location ?? tls.location, error.description)
        }
    }

    /// Peer authentication as `cram-hmac-alg` and `shared-secret` ask for it; nil when neither
    /// is set. One without the other, or a hash OpenSSL does not provide, is an error at its
    /// place in the file.
    static func authentication(_ net: [OptionSetting]) throws -> PeerAuthentication? {
        try ResourceSupport.checkAuthenticationPair(net)
        guard let algorithm = net.last(where: { $0.name == "cram-hmac-alg" }), !algorithm.value.isEmpty,
              let secret = net.last(where: { $0.name == "shared-secret" }) else { return nil }
        guard let authenticator = OpenSSLAuthenticator(algorithm: algorithm.value) else {
            throw ConfigError(algorithm.location, "cram-hmac-alg \(algorithm.value): OpenSSL (\(TLSLibrary.version)) does not provide this hash")
        }
        return PeerAuthentication(authenticator: authenticator, secret: Array(secret.value.utf8))
    }
}
