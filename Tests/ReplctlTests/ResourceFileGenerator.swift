import ReplicaCore

/// Writes resource files from the grammar drbdadm reads (not by mutating a corpus): global and
/// common sections, resources with every option section filled from ``OptionTable`` (values of
/// the option's kind, in and now and then out of its range, with units, quoted or not), single
/// volumes and volume blocks, devices in their three forms, meta-disks in theirs, host names of
/// every length, IPv4 and IPv6 addresses, connection blocks with host lines. Deterministic for a
/// seed (``SeededGenerator``), so a failing file is found again from its seed.
struct ResourceFileGenerator {
    private var random: SeededGenerator

    init(seed: UInt64) { random = SeededGenerator(seed: seed) }

    private mutating func next() -> UInt64 { random.next() }

    private mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    private mutating func chance(_ probability: Double) -> Bool { Double(next() % 10_000) < probability * 10_000 }
    private mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }
    private mutating func number(_ range: ClosedRange<Int64>) -> Int64 {
        // (A range as wide as Int64 — al-extents, which drbdadm does not bound — draws from
        // 32 bits around zero.)
        let span = range.upperBound.subtractingReportingOverflow(range.lowerBound)
        guard !span.overflow, span.partialValue < Int64.max else { return Int64(Int32(truncatingIfNeeded: next())) }
        return range.lowerBound + Int64(bitPattern: next() % UInt64(span.partialValue + 1))
    }

    /// A name of `length` characters that is no keyword: a letter, then letters, digits, `_`, `-`.
    private mutating func name(length: Int) -> String {
        let first = Array("abcdefghijklmnopqrstuvwxyz"), rest = Array("abcdefghijklmnopqrstuvwxyz0123456789_-")
        return "x" + String((0..<max(0, length - 1)).map { $0 == 0 ? pick(first) : pick(rest) })
    }

    /// One resource file (one statement or section header per line, so that lines can be taken
    /// out one by one to minimize a difference).
    mutating func file() -> String {
        var lines: [String] = []
        if chance(0.3) { lines += ["global {", "    usage-count \(pick(["yes", "no", "ask"]));", "}"] }
        if chance(0.4) {
            lines.append("common {")
            lines += sections(resourceLevel: true).map { "    " + $0 }
            lines.append("}")
        }
        var minors = Set<Int>()
        for _ in 0..<(1 + below(2)) { lines += resource(&minors) }
        return lines.joined(separator: "\n") + "\n"
    }

    private mutating func resource(_ minors: inout Set<Int>) -> [String] {
        var lines = ["resource \(name(length: 1 + below(12))) {"]
        lines += sections(resourceLevel: true).map { "    " + $0 }
        // DRBD 8.4's forms: `protocol X;` at resource level, `syncer { }`.
        if chance(0.1) { lines.append("    protocol \(pick(["A", "B", "C"]));") }
        if chance(0.1) {
            lines.append("    syncer {")
            lines += [pick(["rate 40M;", "al-extents 1237;", "verify-alg sha1;", "csums-alg md5;", "use-rle;", "use-rle no;"])].map { "        " + $0 }
            lines.append("    }")
        }
        if chance(0.05) { lines += ["    skip {", "        anything { goes; here; }", "    }"] }
        let volumeBlocks = chance(0.4)
        if volumeBlocks {
            var numbers = Set<Int>()
            for _ in 0..<(1 + below(2)) {
                var number = below(4)
                while numbers.contains(number) { number += 1 }
                numbers.insert(number)
                lines.append("    volume \(number) {")
                lines += volumeStatements(&minors).map { "        " + $0 }
                lines.append("    }")
            }
        } else {
            lines += volumeStatements(&minors).map { "    " + $0 }
        }
        let hosts = [name(length: 1 + below(40)), name(length: 1 + below(40))]
        let port = 1024 + below(60000)
        let ipv6 = chance(0.25)
        var addresses: [String] = []
        let connectionBlock = chance(0.3)
        let mesh = !connectionBlock && chance(0.15)
        // With a connection block drbdadm wants every node-id; otherwise none, both or one.
        let nodeIDs = connectionBlock || chance(0.4)
        // DRBD 8.4's floating sections (by address instead of host name), now and then.
        let floating = !connectionBlock && !mesh && chance(0.08)
        for (index, host) in hosts.enumerated() {
            let address = ipv6 ? "ipv6 [fd00:\(below(9999))::\(index + 1)]:\(port)" : "\(pick(["", "ipv4 "]))10.\(below(255)).\(below(255)).\(index + 1):\(port)"
            addresses.append(address)
            if floating {
                lines.append("    floating \(address) {")
                if nodeIDs { lines.append("        node-id \(index);") }
                lines.append("    }")
                continue
            }
            lines.append("    on \(host) {")
            if nodeIDs || chance(0.2) { lines.append("        node-id \(index);") }
            lines.append("        address \(address);")
            // A host's own disk or meta-disk for the implicit volume, now and then.
            if !volumeBlocks, chance(0.15) { lines.append("        disk /dev/vg/\(host.prefix(6))-\(name(length: 1 + below(6)));") }
            if !volumeBlocks, chance(0.1) { lines.append("        meta-disk internal;") }
            lines.append("    }")
        }
        if mesh {
            lines.append("    connection-mesh {")
            lines.append("        hosts \(hosts.joined(separator: " "));")
            if chance(0.5) {
                lines.append("        net {")
                lines += options(in: [.net]).map { "            " + $0 }
                lines.append("        }")
            }
            lines.append("    }")
        }
        if connectionBlock {
            lines.append("    connection {")
            for (host, address) in zip(hosts, addresses) { lines.append("        host \(host) address \(address);") }
            if chance(0.5) {
                lines.append("        net {")
                lines += options(in: [.net]).map { "            " + $0 }
                lines.append("        }")
            }
            lines.append("    }")
        }
        lines.append("}")
        return lines
    }

    private mutating func volumeStatements(_ minors: inout Set<Int>) -> [String] {
        var minor = below(chance(0.2) ? 1_048_576 : 64)
        while minors.contains(minor) { minor += 1 }
        minors.insert(minor)
        let device = switch below(3) {
        case 0: "device minor \(minor);"
        case 1: "device /dev/drbd\(minor);"
        default: "device /dev/drbd_\(name(length: 1 + below(8))) minor \(minor);"
        }
        let disk = pick(["disk /dev/vg/\(name(length: 1 + below(10)));", "disk \"/dev/disk/by-id/\(name(length: 1 + below(10)))\";"])
        let meta = switch below(4) {
        case 0, 1: "meta-disk internal;"
        case 2: "meta-disk /dev/vg/md\(below(9)) [\(below(8))];"
        default: "meta-disk /dev/vg/md\(below(9));"
        }
        return [device, disk, meta]
    }

    /// Option sections of a resource or `common`.
    private mutating func sections(resourceLevel: Bool) -> [String] {
        var lines: [String] = []
        for (keyword, kinds) in [("options", [OptionSection.resource]), ("net", [.net]), ("disk", [.disk, .peerDevice]),
                                 ("startup", [.startup]), ("handlers", [.handlers])] where chance(0.45) {
            let body = options(in: kinds)
            guard !body.isEmpty else { continue }
            lines.append("\(keyword) {")
            lines += body.map { "    " + $0 }
            lines.append("}")
        }
        return lines
    }

    /// Options of drbd-utils newer than the oracle's (9.22): Replica reads them, drbdadm 9.22
    /// does not know them (docs/COMPATIBILITY.md).
    static let newerThanOracle: Set<String> = ["tls", "tls-keyring", "tls-certificate", "tls-privkey"]

    /// A few options of the given sections, each once, with values of their kind.
    private mutating func options(in sections: [OptionSection]) -> [String] {
        let candidates = OptionTable.all.filter {
            sections.contains($0.section) && !$0.replicaExtension && !Self.newerThanOracle.contains($0.name)
        }
        var chosen: [String: String] = [:]
        var order: [String] = []
        for _ in 0..<(1 + below(4)) {
            let option = pick(candidates)
            guard chosen[option.name] == nil else { continue }
            chosen[option.name] = value(option)
            order.append(option.name)
        }
        return order.map { name in chosen[name]!.isEmpty ? "\(name);" : "\(name) \(chosen[name]!);" }
    }

    /// A value for `option` ("" for a boolean written bare).
    private mutating func value(_ option: OptionDefinition) -> String {
        switch option.kind {
        case .boolean:
            return pick(["yes", "no", ""])
        case .choice(let words):
            return pick(words)
        case .choiceOrNumber(let words, let range):
            return chance(0.5) ? pick(words) : "\(number(range))"
        case .number(let range, let unitBytes, _):
            if range.upperBound < Int64.max - 1000, chance(0.04) { return "\(range.upperBound + 1 + Int64(below(1000)))" }
            if range.lowerBound > 0, chance(0.04) { return "\(range.lowerBound - 1)" }
            let value = number(range)
            // Now and then in a unit drbdadm converts (K/M/G of bytes, s of sectors).
            if unitBytes > 1, chance(0.3) {
                let bytes = value * unitBytes
                for (suffix, size) in [("G", Int64(1) << 30), ("M", Int64(1) << 20), ("k", Int64(1) << 10)] where bytes >= size && bytes % size == 0 {
                    return "\(bytes / size)\(suffix)"
                }
            }
            return "\(value)"
        case .text:
            return pick(["/usr/lib/drbd/notify.sh", "\"/usr/lib/drbd/notify-split-brain.sh root\"", "sha1", "crc32c", "md5",
                         "\"EIUhGoz9e+FUY+XB/wX3\"", "\"E:\"", "\"a@b%c\"", "\"x,y=z\"", "plain_word", "\"with space\"", "0-3"])
        }
    }
}
