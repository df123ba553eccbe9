/// Whether Replica honours what a resource's configuration asks for: every option the parser
/// accepts is either honoured or refused when the resource is brought up, with its place in
/// the file and the reason (docs/COMPATIBILITY.md lists them). A user must never believe they
/// have a protection they do not have.
public enum ResourceSupport {
    /// Checks the options of `resource` as `node` runs it.
    /// - Throws: ``ConfigError`` at the first option Replica does not honour.
    public static func check(_ resource: ResourceSpec, in configuration: Configuration, node: String) throws(ConfigError) {
        let resolver = NodeResolver(nodeName: node)
        // Two nodes replicate; a third host would be silently left out.
        let replicating = resource.hosts.filter { host in host.effectiveAddress != nil || host.names.contains(node) }
        if replicating.count > 2 {
            throw ConfigError(replicating[2].location, "resource \(resource.name) has \(replicating.count) hosts: Replica replicates between two nodes (more peers are not supported yet)")
        }
        // A resource of one host (drbdadm accepts it without an address) has no peer to
        // replicate to; Replica runs a node only with its peer.
        if resource.hosts.count == 1 {
            throw ConfigError(resource.hosts[0].location, "resource \(resource.name) has a single host (\(resource.hosts[0].label)): Replica replicates between two nodes, a resource without a peer is not supported")
        }
        // A `floating` section names no host: DRBD picks it by the machine's IP address, which
        // Replica does not do (it finds its node by name, so that several run on one machine).
        if let floating = resource.hosts.first(where: { $0.floatingAddress != nil }) {
            throw ConfigError(floating.location, "resource \(resource.name): '\(floating.label)' is matched by this machine's IP address, which Replica does not support; name the host with 'on NAME { address ...; }'")
        }
        // A path through DRBD Proxy: Replica runs no proxy, it would connect around it.
        for connection in resource.connections {
            for host in connection.hosts + connection.paths.flatMap({ $0 }) {
                if let proxy = host.proxy {
                    throw ConfigError(proxy.location, "host \(host.name) reaches its peer via proxy on \(proxy.hosts.joined(separator: " ")): DRBD Proxy is not supported by Replica (it connects to its peer directly)")
                }
            }
        }
        let common = configuration.common
        let net = resolver.netOptions(of: resource, in: configuration)
        let sections: [(OptionSection, [OptionSetting])] = [
            (.resource, (common?.resource ?? []) + resource.sections.resource),
            (.net, net),
            (.disk, (common?.disk ?? []) + resource.sections.disk + resolver.connectionSections(of: resource).flatMap(\.disk)),
            (.peerDevice, (common?.peerDevice ?? []) + resource.sections.peerDevice + resolver.connectionSections(of: resource).flatMap(\.peerDevice)),
            (.startup, (common?.startup ?? []) + resource.sections.startup),
            (.handlers, (common?.handlers ?? []) + resource.sections.handlers),
            (.proxy, (common?.proxy ?? []) + resource.sections.proxy),
        ]
        var volumeDisk: [OptionSetting] = []
        if let volumes = try? resolver.volumes(of: resource, in: configuration) {
            for volume in volumes { volumeDisk += volume.diskOptions }
        }
        let notDumped = ((common?.notDumped ?? []) + resource.sections.notDumped).map { ($0.section, [$0.setting]) }
        for (section, settings) in sections + [(.disk, volumeDisk)] + notDumped {
            for setting in settings {
                // A volume's `disk { }` mixes backing-device and resync options.
                let kind = section == .disk && OptionTable.definition(setting.name, in: .disk) == nil ? OptionSection.peerDevice : section
                if let reason = OptionSupport.refusal(of: setting, in: kind) {
                    let shown = setting.blockLines == nil ? "\(setting.name) \(setting.value)" : "\(setting.name) { }"
                    throw ConfigError(setting.location, "\(shown): \(reason)")
                }
            }
        }
        try checkAuthenticationPair(net)
        try checkTLS(net)
    }

    /// `cram-hmac-alg` and `shared-secret` work together: one without the other would leave
    /// the connection unauthenticated while the file seems to ask for authentication.
    public static func checkAuthenticationPair(_ net: [OptionSetting]) throws(ConfigError) {
        let algorithm = net.last { $0.name == "cram-hmac-alg" }
        let secret = net.last { $0.name == "shared-secret" }
        switch (algorithm.map { !$0.value.isEmpty } ?? false, secret.map { !$0.value.isEmpty } ?? false) {
        case (true, false):
            throw ConfigError(algorithm!.location, "cram-hmac-alg \(algorithm!.value) without a shared-secret: the peer cannot be authenticated (add shared-secret \"...\"; to net { })")
        case (false, true):
            throw ConfigError(secret!.location, "shared-secret without cram-hmac-alg: the secret would not be used and the peer not authenticated (add cram-hmac-alg sha256; to net { })")
        default:
            break
        }
    }

    /// `tls yes` needs this node's certificate and key and a way to verify the peer (`tls-ca`,
    /// `tls-peer-fingerprint`, or both); the other TLS options without `tls yes` would leave
    /// the connection in plain text while the file seems to ask for TLS.
    public static func checkTLS(_ net: [OptionSetting]) throws(ConfigError) {
        func last(_ name: String) -> OptionSetting? { net.last { $0.name == name && !$0.value.isEmpty } }
        let names = ["tls-certificate", "tls-privkey", "tls-ca", "tls-peer-fingerprint", "tls-ciphersuites"]
        guard let tls = last("tls"), tls.value == "yes" else {
            if let stray = names.lazy.compactMap(last).first {
                throw ConfigError(stray.location, "\(stray.name) without tls yes: the connection would not be encrypted (add tls yes; to net { })")
            }
            return
        }
        for name in ["tls-certificate", "tls-privkey"] where last(name) == nil {
            throw ConfigError(tls.location, "tls yes without \(name): this node has no \(name == "tls-privkey" ? "private key" : "certificate") to present (add \(name) \"/path/to/file.pem\"; to net { })")
        }
        if last("tls-ca") == nil, last("tls-peer-fingerprint") == nil {
            throw ConfigError(tls.location, "tls yes without tls-ca or tls-peer-fingerprint: the peer's certificate could not be verified")
        }
        if let pin = last("tls-peer-fingerprint"), HexText.fingerprint(pin.value) == nil {
            throw ConfigError(pin.location, "tls-peer-fingerprint '\(pin.value)' is not a SHA-256 fingerprint (64 hex digits, colons allowed, as `openssl x509 -noout -fingerprint -sha256` prints it)")
        }
    }
}
