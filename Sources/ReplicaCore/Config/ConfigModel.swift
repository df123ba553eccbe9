/// One `keyword value;` setting as written, with its value normalized for printing.
public struct OptionSetting: Sendable, Equatable {
    /// The option keyword (the `no-` prefix of legacy forms resolved).
    public var name: String
    /// The value as `dump` prints it (`yes`/`no` for booleans, suffixes kept as written).
    public var value: String
    /// Where the setting was written.
    public var location: SourceLocation
    /// The statements of an option written as a block (DRBD Proxy's `plugin { zlib level 9; }`),
    /// each as its words; nil for an option with a value.
    public var blockLines: [String]? = nil
}

/// `device /dev/drbdN;`, `device minor N;` or `device /dev/drbdX minor N;`.
public struct DeviceSpec: Sendable, Equatable {
    /// The device path if one was given.
    public var path: String?
    /// The minor number.
    public var minor: Int

    /// Creates a device specification.
    public init(path: String?, minor: Int) {
        self.path = path
        self.minor = minor
    }
}

/// `disk PATH;` or `disk none;`.
public enum DiskSpec: Sendable, Equatable {
    /// Diskless (`disk none;`).
    case none
    /// A backing device or file.
    case path(String)
}

/// Where the meta-data of a volume lives.
public enum MetaDiskSpec: Sendable, Equatable {
    /// At the end of the backing device.
    case `internal`
    /// On another device: flexible (`index == nil`) or a fixed 128 MiB slot `[index]`.
    case external(path: String, index: Int?)
}

/// A network address with its family, as `address [AF] IP:PORT` gives it.
public struct NetworkAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// `ipv4`, `ipv6`, `ssocks`, `sdp` or `ib`.
    public var family: String
    /// The address without brackets.
    public var host: String
    /// The TCP port.
    public var port: Int

    /// Creates an address.
    public init(family: String, host: String, port: Int) {
        self.family = family
        self.host = host
        self.port = port
    }

    /// `ipv4 10.1.1.31:7789` or `ipv6 [fd00::1]:7000`, as `drbdadm dump` prints it.
    public var description: String {
        family == "ipv6" ? "\(family) [\(host)]:\(port)" : "\(family) \(host):\(port)"
    }

    /// `10.1.1.31:7789` or `[fd00::1]:7000`: the address as a URL or a command line writes it.
    public var hostAndPort: String {
        family == "ipv6" ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// A `volume N { }` block, or the implicit volume 0 written at resource or host level.
public struct VolumeSpec: Sendable, Equatable {
    /// The volume number (0...65534).
    public var number: Int
    /// `device`.
    public var device: DeviceSpec?
    /// `disk`.
    public var disk: DiskSpec?
    /// `meta-disk`.
    public var metaDisk: MetaDiskSpec?
    /// The `disk { }` options of this volume.
    public var diskOptions: [OptionSetting] = []
    /// True for a written `volume N { }` block, false for the implicit volume 0.
    public var explicit: Bool
    /// Where it was defined.
    public var location: SourceLocation
}

/// The option sections that `common`, `resource` and `connection` can carry.
public struct OptionSections: Sendable, Equatable {
    /// `options { }`.
    public var resource: [OptionSetting] = []
    /// `net { }` (including a legacy `protocol X;` at resource level).
    public var net: [OptionSetting] = []
    /// `disk { }`: backing-device options.
    public var disk: [OptionSetting] = []
    /// `disk { }`: resync-controller options.
    public var peerDevice: [OptionSetting] = []
    /// `startup { }`.
    public var startup: [OptionSetting] = []
    /// `handlers { }`.
    public var handlers: [OptionSetting] = []
    /// `proxy { }`.
    public var proxy: [OptionSetting] = []
    /// Where each section block was opened, to refuse a second block of the same kind.
    var blockLocations: [String: SourceLocation] = [:]
    /// Settings drbdadm 9 drops from its dump (DRBD 8.4's `become-primary-on`, `syncer {
    /// after R; }`) or prints apart (the flag `stacked-timeouts`, bare, last in `startup`),
    /// with the section they belong to: kept so that `up` can refuse what Replica does not
    /// honour.
    public var notDumped: [(section: OptionSection, setting: OptionSetting)] = []

    public static func == (lhs: OptionSections, rhs: OptionSections) -> Bool {
        lhs.resource == rhs.resource && lhs.net == rhs.net && lhs.disk == rhs.disk && lhs.peerDevice == rhs.peerDevice
            && lhs.startup == rhs.startup && lhs.handlers == rhs.handlers && lhs.proxy == rhs.proxy
            && lhs.blockLocations == rhs.blockLocations
            && lhs.notDumped.map(\.section) == rhs.notDumped.map(\.section) && lhs.notDumped.map(\.setting) == rhs.notDumped.map(\.setting)
    }

    /// True when no section holds anything.
    public var isEmpty: Bool {
        resource.isEmpty && net.isEmpty && disk.isEmpty && peerDevice.isEmpty && startup.isEmpty && handlers.isEmpty && proxy.isEmpty
    }

    /// The settings of one section.
    public func settings(_ section: OptionSection) -> [OptionSetting] {
        switch section {
        case .resource: resource
        case .net: net
        case .disk: disk
        case .peerDevice: peerDevice
        case .startup: startup
        case .handlers: handlers
        case .proxy: proxy
        }
    }

    mutating func append(_ setting: OptionSetting, to section: OptionSection) {
        switch section {
        case .resource: resource.append(setting)
        case .net: net.append(setting)
        case .disk: disk.append(setting)
        case .peerDevice: peerDevice.append(setting)
        case .startup: startup.append(setting)
        case .handlers: handlers.append(setting)
        case .proxy: proxy.append(setting)
        }
    }
}

/// An `on NAME... { }` or `floating ADDRESS { }` section.
public struct HostSpec: Sendable, Equatable {
    /// The host names (`on h1 h2 { }`), empty for `floating`.
    public var names: [String]
    /// The address of a `floating` section.
    public var floatingAddress: NetworkAddress?
    /// `node-id N;`, written or assigned as drbdadm assigns it.
    public var nodeID: Int?
    /// `address [AF] IP:PORT;`
    public var address: NetworkAddress?
    /// `nbd-address [AF] IP:PORT;` — a Replica extension (drbdadm does not know it): where
    /// this host also exports the resource's volume over NBD on TCP (no authentication).
    public var nbdAddress: NetworkAddress?
    /// TLS on the TCP NBD export (Replica extensions, as nbdkit's `--tls` and
    /// `--tls-certificates`): `nbd-tls off|on|require;` and `nbd-tls-certificates DIR;`.
    public var nbdTLS: NBDTLSSpec?
    /// `metrics-address [AF] IP:PORT;` — a Replica extension (drbdadm does not know it): where
    /// this host's daemon serves Prometheus metrics over HTTP (`GET /metrics`; no
    /// authentication). Every resource that names it for a host must name the same address.
    public var metricsAddress: NetworkAddress?
    /// Volumes defined inside the host section (including its implicit volume 0).
    public var volumes: [VolumeSpec] = []
    /// Where the section starts.
    public var location: SourceLocation

    /// The name used in messages: `on alice` or `floating ipv4 10.0.0.1:7788`.
    public var label: String {
        if let floatingAddress { return "floating \(floatingAddress)" }
        return "on \(names.joined(separator: " "))"
    }

    /// The address this host is reached at.
    public var effectiveAddress: NetworkAddress? { floatingAddress ?? address }
}

/// A host line inside a `connection { }` or `path { }` block: `host NAME [address [AF] IP:PORT] [port P];`.
public struct ConnectionHost: Sendable, Equatable {
    /// The host name.
    public var name: String
    /// The address, if given.
    public var address: NetworkAddress?
    /// A port given without an address.
    public var port: Int?
    /// Where it was written.
    public var location: SourceLocation
    /// `via proxy on NAME... { inside ADDR; outside ADDR; }`: the path runs through DRBD Proxy.
    public var proxy: ProxyRoute? = nil
}

/// The DRBD Proxy a connection's host reaches its peer through (read and dumped; Replica
/// runs no proxy and refuses such a resource at `up`).
public struct ProxyRoute: Sendable, Equatable {
    /// The hosts the proxy runs on (`on NAME...`).
    public var hosts: [String]
    /// The proxy's address facing DRBD (`inside`).
    public var inside: NetworkAddress?
    /// The proxy's address facing the other proxy (`outside`).
    public var outside: NetworkAddress?
    /// Where `via` was written.
    public var location: SourceLocation
}

/// A DRBD 9 `connection [NAME] { }` block.
public struct ConnectionSpec: Sendable, Equatable {
    /// The optional connection name.
    public var name: String?
    /// `host` lines directly in the connection.
    public var hosts: [ConnectionHost] = []
    /// `path { }` blocks, each with its `host` lines.
    public var paths: [[ConnectionHost]] = []
    /// `net { }` and `disk { }` overrides for this connection.
    public var sections = OptionSections()
    /// Where the block starts.
    public var location: SourceLocation
}

/// A DRBD 9 `connection-mesh { hosts ...; net { } }` block.
public struct ConnectionMeshSpec: Sendable, Equatable {
    /// The host names of the mesh.
    public var hosts: [String]
    /// Options for every connection of the mesh.
    public var sections = OptionSections()
    /// Where the block starts.
    public var location: SourceLocation

    /// True when the mesh names the host of an `on` section called `name`: by that name, or
    /// by its short form before the first dot (`hosts n1 n2;` for `on n1.example.home`, as
    /// drbdadm matches them).
    public func includes(_ name: String) -> Bool {
        hosts.contains { Self.meshName($0, matches: name) }
    }

    /// True when `meshName` (in `hosts`) names the `on` section `name`, fully or by its short form.
    public static func meshName(_ meshName: String, matches name: String) -> Bool {
        meshName == name || meshName == name.prefix { $0 != "." }
    }
}

/// A `resource NAME { }` block.
public struct ResourceSpec: Sendable, Equatable {
    /// The resource name.
    public var name: String
    /// Where the block starts.
    public var location: SourceLocation
    /// Volumes at resource level (explicit blocks, or the implicit volume 0).
    public var volumes: [VolumeSpec] = []
    /// `on` and `floating` sections, in written order.
    public var hosts: [HostSpec] = []
    /// `connection` blocks.
    public var connections: [ConnectionSpec] = []
    /// The `connection-mesh` block.
    public var mesh: ConnectionMeshSpec?
    /// `options`, `net`, `disk`, `startup` and `handlers` of the resource.
    public var sections = OptionSections()
}

/// The `global { }` block. `dump` prints only what differs from the defaults.
public struct GlobalSpec: Sendable, Equatable {
    /// `disable-ip-verification;`
    public var disableIPVerification = false
    /// `minor-count N;`
    public var minorCount: Int?
    /// `dialog-refresh N;` (default 1)
    public var dialogRefresh: Int?
    /// `usage-count yes|no|ask;` (default ask)
    public var usageCount: String?
    /// `udev-always-use-vnr;`
    public var udevAlwaysUseVNR = false
    /// Where the block starts.
    public var location: SourceLocation
}

/// A whole configuration: what `replctl` reads from `/etc/replica/replica.conf` and its includes.
public struct Configuration: Sendable, Equatable {
    /// The file that was read first.
    public var file: String
    /// The `global` block, if written.
    public var global: GlobalSpec?
    /// The `common` block, if written.
    public var common: OptionSections?
    /// The resources, in written order.
    public var resources: [ResourceSpec] = []
    /// Things drbdadm accepts but that are probably mistakes (an option set twice, an
    /// unknown resource in resync-after); replctl prints them on standard error.
    public var warnings: [ConfigError] = []

    /// The resource called `name`.
    public func resource(named name: String) -> ResourceSpec? {
        resources.first { $0.name == name }
    }
}

/// TLS on a host's TCP NBD export: `nbd-tls off|on|require;` (`on`: a client may upgrade with
/// NBD_OPT_STARTTLS; `require`: it must, every other option gets NBD_REP_ERR_TLS_REQD) and
/// either `nbd-tls-certificates DIR;` (qemu's and nbdkit's layout: `server-cert.pem`,
/// `server-key.pem`, and `ca-cert.pem` when clients must present a certificate from that CA)
/// or `nbd-tls-psk FILE;` (pre-shared keys, `identity:hexkey` lines as GnuTLS's psktool writes).
public struct NBDTLSSpec: Sendable, Equatable {
    /// `off`, `on` or `require`.
    public var mode: String
    /// The certificates directory.
    public var certificates: String?
    /// The pre-shared keys file.
    public var preSharedKeys: String?
    /// Where `nbd-tls` was written.
    public var location: SourceLocation

    /// A specification.
    public init(mode: String, certificates: String?, preSharedKeys: String? = nil, location: SourceLocation) {
        self.mode = mode
        self.certificates = certificates
        self.preSharedKeys = preSharedKeys
        self.location = location
    }
}
