/// The section an option belongs to, which decides where `dump` prints it and which
/// part of the engine reads it.
public enum OptionSection: String, Sendable, CaseIterable {
    /// `options { }`: resource options.
    case resource = "options"
    /// `net { }`: connection options.
    case net
    /// `disk { }`: options of the local backing device.
    case disk
    /// `disk { }` too, but per peer device: the resync controller.
    case peerDevice = "peer-device"
    /// `startup { }`.
    case startup
    /// `handlers { }`.
    case handlers
    /// `proxy { }` (DRBD Proxy options, kept and printed, not used by Replica).
    case proxy
}

/// What kind of value an option takes and how it is checked.
public enum OptionValueKind: Sendable, Equatable {
    /// `yes`/`no`, or the bare keyword for yes (and `no-NAME` for no).
    case boolean
    /// One of a fixed list of words.
    case choice([String])
    /// An integer in `range`, in units of `unitBytes` bytes when a K/M/G suffix is used
    /// (1 for plain counts and times), described by `unit`.
    case number(ClosedRange<Int64>, unitBytes: Int64, unit: String)
    /// One of the words, or an integer in the range (DRBD's `quorum`).
    case choiceOrNumber([String], ClosedRange<Int64>)
    /// Free text, at most `maxLength` bytes.
    case text(maxLength: Int)
}

/// One option of DRBD's configuration (or one of Replica's own), with its default, range and unit.
public struct OptionDefinition: Sendable {
    /// The keyword.
    public var name: String
    /// The section it belongs to.
    public var section: OptionSection
    /// The value type and its limits.
    public var kind: OptionValueKind
    /// The default value as DRBD prints it, or nil when unset by default.
    public var defaultValue: String?
    /// True for options that only Replica knows (drbdadm rejects them).
    public var replicaExtension: Bool

    init(_ name: String, _ section: OptionSection, _ kind: OptionValueKind, _ defaultValue: String?, replica: Bool = false) {
        self.name = name
        self.section = section
        self.kind = kind
        self.defaultValue = defaultValue
        self.replicaExtension = replica
    }
}

/// Every option Replica understands: DRBD's (reference tables, `drbdsetup help` ranges) and
/// Replica's own extensions, in DRBD's order.
public enum OptionTable {
    private static func n(_ r: ClosedRange<Int64>, _ unitBytes: Int64 = 1, _ unit: String) -> OptionValueKind {
        .number(r, unitBytes: unitBytes, unit: unit)
    }

    private static let afterSB0 = [
        "disconnect", "discard-younger-primary", "discard-older-primary", "discard-zero-changes",
        "discard-least-changes", "discard-local", "discard-remote",
    ]

    /// All definitions, in the order DRBD lists them per section.
    public static let all: [OptionDefinition] = [
        // options { }
        .init("cpu-mask", .resource, .text(maxLength: 31), ""),
        .init("on-no-data-accessible", .resource, .choice(["io-error", "suspend-io"]), "io-error"),
        .init("auto-promote", .resource, .boolean, "yes"),
        .init("peer-ack-window", .resource, n(2048...204800, 512, "sectors"), "4096"),
        .init("peer-ack-delay", .resource, n(1...10000, 1, "ms"), "100"),
        .init("twopc-timeout", .resource, n(50...600, 1, "0.1 s"), "300"),
        .init("twopc-retry-timeout", .resource, n(1...50, 1, "0.1 s"), "1"),
        .init("auto-promote-timeout", .resource, n(0...600, 1, "0.1 s"), "20"),
        .init("max-io-depth", .resource, n(4...4_294_967_295, 1, "requests"), "8000"),
        .init("quorum", .resource, .choiceOrNumber(["off", "majority", "all"], 1...32), "off"),
        .init("on-no-quorum", .resource, .choice(["io-error", "suspend-io"]), "suspend-io"),
        .init("quorum-minimum-redundancy", .resource, .choiceOrNumber(["off", "majority", "all"], 1...32), "off"),
        .init("on-suspended-primary-outdated", .resource, .choice(["disconnect", "force-secondary"]), "disconnect"),

        // net { }
        .init("transport", .net, .text(maxLength: 255), "tcp"),
        .init("protocol", .net, .choice(["A", "B", "C"]), "C"),
        .init("timeout", .net, n(1...600, 1, "0.1 s"), "60"),
        .init("max-epoch-size", .net, n(1...20000, 1, "writes"), "2048"),
        .init("connect-int", .net, n(1...120, 1, "s"), "10"),
        .init("ping-int", .net, n(1...120, 1, "s"), "10"),
        .init("sndbuf-size", .net, n(0...10_485_760, 1, "bytes"), "0"),
        .init("rcvbuf-size", .net, n(0...10_485_760, 1, "bytes"), "0"),
        .init("ko-count", .net, n(0...200, 1, "timeouts"), "7"),
        .init("allow-two-primaries", .net, .boolean, "no"),
        .init("cram-hmac-alg", .net, .text(maxLength: 63), ""),
        .init("shared-secret", .net, .text(maxLength: 63), ""),
        .init("after-sb-0pri", .net, .choice(afterSB0), "disconnect"),
        .init("after-sb-1pri", .net, .choice(["disconnect", "consensus", "discard-secondary", "call-pri-lost-after-sb", "violently-as0p"]), "disconnect"),
        .init("after-sb-2pri", .net, .choice(["disconnect", "call-pri-lost-after-sb", "violently-as0p"]), "disconnect"),
        .init("always-asbp", .net, .boolean, "no"),
        .init("rr-conflict", .net, .choice(["disconnect", "call-pri-lost", "violently", "retry-connect", "auto-discard"]), "disconnect"),
        .init("ping-timeout", .net, n(1...300, 1, "0.1 s"), "5"),
        .init("data-integrity-alg", .net, .text(maxLength: 63), ""),
        .init("tcp-cork", .net, .boolean, "yes"),
        .init("on-congestion", .net, .choice(["block", "pull-ahead", "disconnect"]), "block"),
        .init("congestion-fill", .net, n(0...20_971_520, 512, "sectors"), "0"),
        .init("congestion-extents", .net, n(67...65534, 1, "extents"), "1237"),
        .init("csums-alg", .net, .text(maxLength: 63), ""),
        .init("csums-after-crash-only", .net, .boolean, "no"),
        .init("verify-alg", .net, .text(maxLength: 63), ""),
        .init("use-rle", .net, .boolean, "yes"),
        .init("socket-check-timeout", .net, n(0...300, 1, "0.1 s"), "0"),
        .init("fencing", .net, .choice(["dont-care", "resource-only", "resource-and-stonith"]), "dont-care"),
        .init("max-buffers", .net, n(32...131_072, 1, "pages"), "2048"),
        .init("allow-remote-read", .net, .boolean, "yes"),
        .init("tls", .net, .boolean, "no"),
        // DRBD 9.2's names (key descriptions in the kernel keyring there; PEM files here).
        .init("tls-keyring", .net, .text(maxLength: 4096), nil),
        .init("tls-privkey", .net, .text(maxLength: 4096), nil),
        .init("tls-certificate", .net, .text(maxLength: 4096), nil),
        // Replica's own: the CA file, a pinned peer certificate, the TLS 1.3 cipher suites.
        .init("tls-ca", .net, .text(maxLength: 4096), nil, replica: true),
        .init("tls-peer-fingerprint", .net, .text(maxLength: 128), nil, replica: true),
        .init("tls-ciphersuites", .net, .text(maxLength: 1024), nil, replica: true),

        // disk { } (backing device)
        .init("size", .disk, n(0...(1 << 41), 512, "sectors"), "0"),  // drbdadm 9.22: at most 2^41 sectors
        .init("on-io-error", .disk, .choice(["pass_on", "call-local-io-error", "detach"]), "detach"),
        .init("disk-barrier", .disk, .boolean, "no"),
        .init("disk-flushes", .disk, .boolean, "yes"),
        .init("disk-drain", .disk, .boolean, "yes"),
        .init("md-flushes", .disk, .boolean, "yes"),
        .init("resync-after", .disk, .text(maxLength: 255), "-1"),
        .init("al-extents", .disk, n(Int64.min...Int64.max, 1, "extents"), "1237"),  // drbdadm dump takes any number; up checks 67..65534
        .init("al-updates", .disk, .boolean, "yes"),
        .init("discard-zeroes-if-aligned", .disk, .boolean, "yes"),
        .init("disable-write-same", .disk, .boolean, "no"),
        .init("disk-timeout", .disk, n(0...6000, 1, "0.1 s"), "0"),
        .init("read-balancing", .disk, .choice([
            "prefer-local", "prefer-remote", "round-robin", "least-pending", "when-congested-remote",
            "32K-striping", "64K-striping", "128K-striping", "256K-striping", "512K-striping", "1M-striping",
        ]), "prefer-local"),
        .init("rs-discard-granularity", .disk, n(0...1_048_576, 1, "bytes"), "0"),

        // disk { } (peer device: resync controller)
        .init("resync-rate", .peerDevice, n(1...8_388_608, 1024, "KiB/s"), "250"),
        .init("c-plan-ahead", .peerDevice, n(0...300, 1, "0.1 s"), "20"),
        .init("c-delay-target", .peerDevice, n(1...100, 1, "0.1 s"), "10"),
        .init("c-fill-target", .peerDevice, n(0...1_048_576, 512, "sectors"), "100"),
        .init("c-max-rate", .peerDevice, n(0...4_194_304, 1024, "KiB/s"), "102400"),
        .init("c-min-rate", .peerDevice, n(0...4_194_304, 1024, "KiB/s"), "250"),
        .init("bitmap", .peerDevice, .boolean, "yes"),

        // startup { }
        .init("wfc-timeout", .startup, n(0...300_000, 1, "s"), "0"),
        .init("degr-wfc-timeout", .startup, n(0...300_000, 1, "s"), "0"),
        .init("outdated-wfc-timeout", .startup, n(0...300_000, 1, "s"), "0"),
        .init("wait-after-sb", .startup, .boolean, "no"),
        .init("stacked-timeouts", .startup, .boolean, "no"),
        .init("become-primary-on", .startup, .text(maxLength: 256), nil),

        // proxy { }
        .init("memlimit", .proxy, n(0...Int64(1) << 40, 1, "bytes"), nil),
        .init("read-loops", .proxy, n(0...1_000_000, 1, "loops"), nil),
        .init("compression", .proxy, n(0...1_000_000, 1, "level"), nil),
        .init("bwlimit", .proxy, n(0...Int64(1) << 40, 1, "bytes/s"), nil),
        // Written as a block, `plugin { zlib level 9; }` (ConfigBuilder.option keeps its lines).
        .init("plugin", .proxy, .text(maxLength: 4096), nil),

        // handlers { }
    ] + [
        "pri-on-incon-degr", "pri-lost-after-sb", "pri-lost", "fence-peer", "unfence-peer", "local-io-error",
        "split-brain", "before-resync-target", "after-resync-target", "before-resync-source", "out-of-sync",
        "initial-split-brain", "quorum-lost", "disconnected", "outdate-peer",
    ].map { OptionDefinition($0, .handlers, .text(maxLength: 255), nil) }

    private static let byKey: [String: OptionDefinition] = {
        var table: [String: OptionDefinition] = [:]
        for definition in all { table["\(definition.section.rawValue)/\(definition.name)"] = definition }
        return table
    }()

    /// The definition of `name` in `section`, or nil.
    public static func definition(_ name: String, in section: OptionSection) -> OptionDefinition? {
        byKey["\(section.rawValue)/\(name)"]
    }

    /// The options a `disk { }` block takes: backing-device options and the resync controller.
    public static func diskBlockDefinition(_ name: String) -> OptionDefinition? {
        definition(name, in: .disk) ?? definition(name, in: .peerDevice)
    }

    /// The names accepted in a section, for "expected one of" messages.
    public static func names(in sections: [OptionSection]) -> [String] {
        all.filter { sections.contains($0.section) }.map(\.name)
    }
}
