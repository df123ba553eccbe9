/// Which options Replica honours, and why it refuses the others when a resource comes up
/// (docs/COMPATIBILITY.md has the same table for readers). Every option of ``OptionTable`` has
/// a rule here; `OptionSupportTests` checks that none is missing.
public enum OptionSupport {
    /// How Replica treats an option.
    public enum Rule: Sendable, Equatable {
        /// Honoured, whatever its value.
        case honoured
        /// Honoured for these values; any other is refused with the reason.
        case only([String], because: String)
        /// Honoured when empty (not set); a value is refused with the reason.
        case unset(because: String)
        /// Refused whenever written, with the reason.
        case refused(because: String)
        /// Honoured for a number in the range (in the option's unit); another is refused.
        case within(ClosedRange<Int64>, because: String)
    }

    static let notYet = "not supported by Replica yet"

    /// The rule for `name` in `section`, or nil for an option not in the table.
    public static func rule(for name: String, in section: OptionSection) -> Rule? {
        switch section {
        case .resource: resourceRules[name]
        case .net: netRules[name]
        case .disk: diskRules[name]
        case .peerDevice: peerDeviceRules[name]
        case .startup: startupRules[name]
        case .handlers: handlerRules[name]
        case .proxy: .refused(because: "DRBD Proxy is not supported by Replica (it connects to its peer directly)")
        }
    }

    /// Why `setting` (in `section`) is refused, or nil when Replica honours it.
    public static func refusal(of setting: OptionSetting, in section: OptionSection) -> String? {
        switch rule(for: setting.name, in: section) {
        case .honoured?, nil: return nil
        case .only(let values, let reason)?: return values.contains(setting.value) ? nil : reason
        case .unset(let reason)?: return setting.value.isEmpty || setting.value == "\"\"" ? nil : reason
        case .refused(let reason)?: return reason
        case .within(let range, let reason)?:
            let unitBytes: Int64 = if case .number(_, let bytes, _)? = OptionTable.definition(setting.name, in: section)?.kind { bytes } else { 1 }
            guard let amount = OptionValueParser.number(setting.value, unitBytes: unitBytes), range.contains(amount) else { return reason }
            return nil
        }
    }

    private static let resourceRules: [String: Rule] = [
        "cpu-mask": .unset(because: "\(notYet): Replica's threads are not pinned to CPUs"),
        "on-no-data-accessible": .only(["io-error"], because: "\(notYet): I/O without UpToDate data fails (io-error); it is never suspended"),
        "auto-promote": .only(["no"], because: "Replica does not promote a resource when its device is opened: run `replctl primary` (or let a cluster manager do it)"),
        "peer-ack-window": .only(["4096"], because: "\(notYet): a two-node resource has no peer-ack window to tune"),
        "peer-ack-delay": .only(["100"], because: "\(notYet): a two-node resource has no peer acks to delay"),
        "twopc-timeout": .only(["300"], because: "\(notYet): Replica has no two-phase commits (two nodes)"),
        "twopc-retry-timeout": .only(["1"], because: "\(notYet): Replica has no two-phase commits (two nodes)"),
        "auto-promote-timeout": .only(["20"], because: "\(notYet): Replica does not auto-promote"),
        "max-io-depth": .honoured,
        "quorum": .only(["off"], because: "\(notYet): Replica has no quorum (two nodes; use fencing through a cluster manager)"),
        "on-no-quorum": .honoured,  // Without quorum (refused above) it never applies, as in DRBD.
        "quorum-minimum-redundancy": .only(["off"], because: "\(notYet): Replica has no quorum"),
        "on-suspended-primary-outdated": .honoured,  // Applies only with quorum or fencing, both refused.
    ]

    private static let netRules: [String: Rule] = [
        "transport": .only(["tcp"], because: "Replica's only transport is tcp for now"),
        "protocol": .honoured, "timeout": .honoured, "max-epoch-size": .honoured, "connect-int": .honoured,
        "ping-int": .honoured, "sndbuf-size": .honoured, "rcvbuf-size": .honoured, "ko-count": .honoured,
        "allow-two-primaries": .honoured, "after-sb-0pri": .honoured, "after-sb-1pri": .honoured, "after-sb-2pri": .honoured,
        "always-asbp": .honoured, "ping-timeout": .honoured, "max-buffers": .honoured, "use-rle": .honoured,
        "rr-conflict": .only(["disconnect", "call-pri-lost", "violently", "retry-connect"],
                             because: "\(notYet): rr-conflict auto-discard (DRBD 9)"),
        "cram-hmac-alg": .only([""] + PeerAuthentication.algorithms,
                               because: "unknown hash for peer authentication (Replica offers \(PeerAuthentication.algorithms.joined(separator: ", ")))"),
        "shared-secret": .honoured,  // Only with cram-hmac-alg: ResourceSupport checks the pair.
        "data-integrity-alg": .unset(because: "\(notYet): replicated data would not be checked on the wire"),
        "tcp-cork": .only(["yes"], because: "Replica always sends a batch of frames in one write: corking cannot be turned off"),
        "on-congestion": .only(["block"], because: "\(notYet): a congested link holds writes back (block); pull-ahead and disconnect are not offered"),
        "congestion-fill": .only(["0"], because: "\(notYet): there is no Ahead/Behind mode (on-congestion block only)"),
        "congestion-extents": .only(["1237"], because: "\(notYet): there is no Ahead/Behind mode (on-congestion block only)"),
        "csums-alg": .unset(because: "checksum-based resync is \(notYet)"),
        "csums-after-crash-only": .only(["no"], because: "checksum-based resync is \(notYet)"),
        "verify-alg": .unset(because: "online verify is \(notYet)"),
        "socket-check-timeout": .only(["0"], because: "\(notYet): a new link is used at once"),
        "fencing": .only(["dont-care"], because: "fencing is \(notYet): the peer would not be outdated before this node goes on alone"),
        "allow-remote-read": .only(["yes"], because: "\(notYet): a Diskless node always reads from its peer"),
        // TLS: the set is checked together by ResourceSupport.checkTLS, the files when loaded.
        "tls": .honoured, "tls-certificate": .honoured, "tls-privkey": .honoured, "tls-ca": .honoured,
        "tls-peer-fingerprint": .honoured, "tls-ciphersuites": .honoured,
        "tls-keyring": .refused(because: "Replica reads its key and certificate from PEM files (tls-privkey, tls-certificate), not from the kernel keyring"),
    ]

    private static let diskRules: [String: Rule] = [
        "on-io-error": .honoured, "md-flushes": .honoured, "al-extents": .within(67...65534, because: "al-extents must be in 67..65534 (DRBD's range: drbdsetup refuses the rest)"),
        "size": .only(["0"], because: "\(notYet): a volume uses all of its disk (no size limit)"),
        "disk-barrier": .only(["no"], because: "\(notYet): write ordering uses flushes (disk-barrier no)"),
        "disk-flushes": .only(["yes"], because: "\(notYet): Replica flushes the disk at every barrier; it cannot be turned off"),
        "disk-drain": .only(["yes"], because: "\(notYet): write ordering drains and flushes; it cannot be turned off"),
        "resync-after": .only(["-1"], because: "\(notYet): resyncs of different resources run at the same time"),
        "al-updates": .only(["yes"], because: "\(notYet): activity-log transactions are always written"),
        // Discards are replicated as zeroes written: they read back as zeroes whatever these say.
        "discard-zeroes-if-aligned": .honoured, "disable-write-same": .honoured,
        "disk-timeout": .only(["0"], because: "\(notYet): a slow disk is waited for"),
        "read-balancing": .only(["prefer-local"], because: "\(notYet): reads come from the local disk when it is UpToDate"),
        "rs-discard-granularity": .only(["0"], because: "\(notYet): resync blocks are always copied"),
    ]

    private static let peerDeviceRules: [String: Rule] = [
        "resync-rate": .honoured, "c-plan-ahead": .honoured, "c-delay-target": .honoured, "c-fill-target": .honoured,
        "c-max-rate": .honoured, "c-min-rate": .honoured,
        "bitmap": .only(["yes"], because: "\(notYet): every volume keeps a bitmap"),
    ]

    private static let startupRules: [String: Rule] = [
        // `replctl wait-connect` and `wait-sync` wait this long when not given --timeout.
        "wfc-timeout": .honoured, "degr-wfc-timeout": .honoured, "outdated-wfc-timeout": .honoured,
        "wait-after-sb": .only(["no"], because: "\(notYet): wait-connect does not wait through a split brain"),
        "stacked-timeouts": .only(["no"], because: "stacked resources are \(notYet)"),
        "become-primary-on": .refused(because: "Replica does not promote at startup: run `replctl primary` (or let a cluster manager do it)"),
    ]

    private static let handlerRules: [String: Rule] = [
        "split-brain": .honoured, "initial-split-brain": .honoured, "pri-lost-after-sb": .honoured, "pri-lost": .honoured,
        "local-io-error": .honoured,
        // Called only with fencing or quorum, which are refused: never called, as in DRBD.
        "fence-peer": .honoured, "unfence-peer": .honoured, "outdate-peer": .honoured, "quorum-lost": .honoured,
        "pri-on-incon-degr": .refused(because: "the pri-on-incon-degr handler is \(notYet): it would never run"),
        "before-resync-target": .refused(because: "the before-resync-target handler is \(notYet): it would never run (no snapshot before a resync)"),
        "after-resync-target": .refused(because: "the after-resync-target handler is \(notYet): it would never run"),
        "before-resync-source": .refused(because: "the before-resync-source handler is \(notYet): it would never run"),
        "out-of-sync": .refused(because: "the out-of-sync handler is \(notYet): it would never run (online verify is not supported)"),
        "disconnected": .refused(because: "the disconnected handler is \(notYet): it would never run"),
    ]
}
