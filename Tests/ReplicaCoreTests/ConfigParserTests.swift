import Testing
@testable import ReplicaCore
@testable import ReplicaEngine

@Suite("Configuration parser")
struct ConfigParserTests {
    static let twoHosts = """
        on a { device minor 1; disk /dev/x; meta-disk internal; address 10.0.0.1:7788; }
        on b { device minor 1; disk /dev/y; meta-disk internal; address 10.0.0.2:7788; }
        """

    func load(_ text: String) throws(ConfigError) -> Configuration {
        try ConfigBuilder.load(text: text, file: "test.res")
    }

    func error(_ text: String) -> ConfigError? {
        do {
            _ = try load(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func lexerTracksLinesColumnsAndQuotes() throws {
        var lexer = ConfigLexer(text: "a \"b c\" {\n  d; # comment\n}", file: "f")
        let tokens = try lexer.tokenize()
        #expect(tokens.map(\.text) == ["a", "b c", "{", "d", ";", "}", ""])
        #expect(tokens[1].quoted)
        #expect(tokens[3].location == SourceLocation(file: "f", line: 2, column: 3))
        #expect(tokens[5].location.line == 3)
    }

    @Test func quotedEscapes() throws {
        var lexer = ConfigLexer(text: #"x "a\"b\\c";"#, file: "f")
        #expect(try lexer.tokenize()[1].text == #"a"b\c"#)
    }

    @Test func seedResource() throws {
        let config = try load("""
            global { usage-count no; }
            common { net { protocol C; } }
            resource r0 {
              device /dev/drbd0; disk /dev/sdb1; meta-disk internal;
              on node1 { address 192.168.0.11:7788; }
              on node2 { address 192.168.0.12:7788; }
            }
            """)
        let resource = try #require(config.resource(named: "r0"))
        #expect(resource.volumes.count == 1)
        #expect(resource.volumes[0].device == DeviceSpec(path: "/dev/drbd0", minor: 0))
        #expect(resource.volumes[0].explicit == false)
        #expect(resource.hosts.map(\.names) == [["node1"], ["node2"]])
        #expect(resource.hosts[0].address == NetworkAddress(family: "ipv4", host: "192.168.0.11", port: 7788))
        #expect(config.common?.net.first?.value == "C")
        #expect(config.global?.usageCount == "no")
    }

    /// Replica's extensions of an `on` section: the host's NBD export on TCP, and where its
    /// daemon serves Prometheus metrics — read, dumped, refused twice, checked as addresses.
    @Test(arguments: [("nbd-address", "ipv6 [::1]:10809", "nbd-address      ipv6 [::1]:10809;"),
                      ("metrics-address", "127.0.0.1:9942", "metrics-address  ipv4 127.0.0.1:9942;")])
    func addressExtensionOfAHost(keyword: String, written: String, dumped: String) throws {
        let config = try load("""
            resource r {
              on a { device minor 1; disk /dev/x; meta-disk internal; address 10.0.0.1:7788; \(keyword) \(written); }
              on b { device minor 1; disk /dev/y; meta-disk internal; address 10.0.0.2:7788; }
            }
            """)
        let hosts = config.resources[0].hosts
        let read = keyword == "nbd-address" ? hosts.map(\.nbdAddress) : hosts.map(\.metricsAddress)
        let expected = keyword == "nbd-address" ? NetworkAddress(family: "ipv6", host: "::1", port: 10809) : NetworkAddress(family: "ipv4", host: "127.0.0.1", port: 9942)
        #expect(read == [expected, nil])
        #expect(ConfigDumper(nodeName: "a").dump(config).contains(dumped))
        let head = "resource r { on a { device minor 1; disk /dev/x; meta-disk internal; address 10.0.0.1:7788; "
        let host = "on b { device minor 1; disk /dev/y; meta-disk internal; address 10.0.0.2:7788; }"
        let twice = error(head + "\(keyword) 10.0.0.1:1; \(keyword) 10.0.0.1:2; } \(host) }")
        let column = head.count + keyword.count + " 10.0.0.1:1; ".count + 1
        #expect(twice?.description.contains("test.res:1:\(column): '\(keyword)' is given twice in on a") == true, "\(String(describing: twice))")
        let badPort = error(head + "\(keyword) 10.0.0.1:0; } \(host) }")
        #expect(badPort?.description.contains("port in '10.0.0.1:0' must be a number in 1..65535") == true)
        let badHost = error(head + "\(keyword) 10.0.0:9942; } \(host) }")
        #expect(badHost?.description.contains("'10.0.0' is not a valid IPv4 address") == true)
    }

    /// `nbd-tls` and `nbd-tls-certificates` in an `on` section: read, dumped after
    /// `nbd-address`, and refused where they would leave the export without TLS it seems to have.
    @Test func nbdTLSOfAHost() throws {
        let head = "resource r { on a { device minor 1; disk /dev/x; meta-disk internal; address 10.0.0.1:7788; "
        let host = " } on b { device minor 1; disk /dev/y; meta-disk internal; address 10.0.0.2:7788; } }"
        let config = try load(head + "nbd-address 127.0.0.1:10809; nbd-tls require; nbd-tls-certificates /etc/replica/nbd;" + host)
        #expect(config.resources[0].hosts[0].nbdTLS?.mode == "require")
        #expect(config.resources[0].hosts[0].nbdTLS?.certificates == "/etc/replica/nbd")
        let dumped = ConfigDumper(nodeName: "a").dump(config)
        #expect(dumped.contains("nbd-address      ipv4 127.0.0.1:10809;\n        nbd-tls          require;\n        nbd-tls-certificates /etc/replica/nbd;"), "\(dumped)")
        let psk = try load(head + "nbd-address 127.0.0.1:10809; nbd-tls on; nbd-tls-psk /etc/replica/keys.psk;" + host)
        #expect(psk.resources[0].hosts[0].nbdTLS?.preSharedKeys == "/etc/replica/keys.psk")
        #expect(ConfigDumper(nodeName: "a").dump(psk).contains("nbd-tls           on;\n        nbd-tls-psk      /etc/replica/keys.psk;"))
        let reread = try load(dumped).resources[0].hosts[0].nbdTLS
        #expect(reread?.mode == "require" && reread?.certificates == "/etc/replica/nbd")
        let cases: [(String, String)] = [
            ("nbd-address 127.0.0.1:10809; nbd-tls maybe; nbd-tls-certificates /d;", "nbd-tls 'maybe': expected off, on or require"),
            ("nbd-address 127.0.0.1:10809; nbd-tls on;", "nbd-tls on without nbd-tls-certificates or nbd-tls-psk in on a"),
            ("nbd-tls require; nbd-tls-certificates /d;", "nbd-tls require without nbd-address in on a"),
            ("nbd-address 127.0.0.1:10809; nbd-tls-certificates /d;", "nbd-tls-certificates without nbd-tls in on a"),
            ("nbd-address 127.0.0.1:10809; nbd-tls on; nbd-tls off; nbd-tls-certificates /d;", "'nbd-tls' is given twice in on a"),
            ("nbd-address 127.0.0.1:10809; nbd-tls on; nbd-tls-certificates /d; nbd-tls-psk /k.psk;", "nbd-tls-certificates and nbd-tls-psk in on a"),
            ("nbd-address 127.0.0.1:10809; nbd-tls-psk /k.psk;", "nbd-tls-psk without nbd-tls in on a"),
        ]
        for (body, message) in cases {
            let refused = error(head + body + host)
            #expect(refused?.description.contains(message) == true, "\(body): \(String(describing: refused))")
        }
    }

    /// drbdadm's lexer takes `[0-9]+[KMGs]?` for an integer, and reads a device minor and a
    /// volume number without the unit (checked against drbdadm 9.22: `minor 1840M` dumps as
    /// `minor 1840`, `volume 3M` as `volume 3`); other letters, signs and lower-case units are
    /// parse errors there and refused here.
    @Test func minorAndVolumeNumbersDropAUnitLetter() throws {
        let hosts = "on a { address 10.0.0.1:7788; } on b { address 10.0.0.2:7788; }"
        let config = try load("resource r { volume 3M { device minor 1840M; disk /dev/x; meta-disk internal; } \(hosts) }")
        #expect(config.resources[0].volumes.map(\.number) == [3])
        #expect(config.resources[0].volumes[0].device?.minor == 1840)
        #expect(try load("resource r { device minor 0007s; disk /dev/x; meta-disk internal; \(hosts) }").resources[0].volumes[0].device?.minor == 7)
        for bad in ["1840k", "1840x", "+5", "K", "0x10"] {
            let refused = error("resource r { device minor \(bad); disk /dev/x; meta-disk internal; \(hosts) }")
            #expect(refused?.description.contains("device minor must be a number in 0..2147483647, not '\(bad)'") == true, "\(bad): \(String(describing: refused))")
        }
    }

    /// Several errors: the first in reading order is reported, as drbdadm's one-pass parser
    /// does — a problem in the statements completed before a syntax error comes first.
    @Test func theFirstErrorInReadingOrderIsReported() throws {
        let hosts = "on a { address 10.0.0.1:7788; } on b { address 10.0.0.2:7788; }"
        let semanticFirst = error("resource r { net { protocol D; } device minor 1; disk /x; meta-disk internal; \(hosts) }\nresource s { device minor 2 }")
        #expect(semanticFirst?.location.line == 1 && semanticFirst?.message.contains("'D' is not a valid value for 'protocol'") == true, "\(String(describing: semanticFirst))")
        let syntaxFirst = error("resource r { device minor 1; on a { address 10.0.0.1:7788 } }\nresource s { net { protocol D; } }")
        #expect(syntaxFirst?.location.line == 1 && syntaxFirst?.message.contains("expected ';'") == true, "\(String(describing: syntaxFirst))")
        let unknownThenUnterminated = error("global { usage-count maybe; }\nresource r {")
        #expect(unknownThenUnterminated?.location.line == 1, "\(String(describing: unknownThenUnterminated))")
    }

    /// `--metrics-address` on the command line: checked as the resource file's addresses are.
    @Test func commandLineAddresses() throws {
        #expect(try ConfigBuilder.commandLineAddress("[::1]:9942", option: "--metrics-address") == NetworkAddress(family: "ipv6", host: "::1", port: 9942))
        #expect(try ConfigBuilder.commandLineAddress("10.1.2.3:80", option: "--metrics-address") == NetworkAddress(family: "ipv4", host: "10.1.2.3", port: 80))
        #expect(throws: ConfigError.self) { try ConfigBuilder.commandLineAddress("localhost:9942", option: "--metrics-address") }
        #expect(throws: ConfigError.self) { try ConfigBuilder.commandLineAddress("127.0.0.1", option: "--metrics-address") }
    }

    /// DRBD 8.4's `protocol X;` joins the net options in reading order (drbdadm 9.22:
    /// `net { timeout 50; } protocol A;` dumps timeout, then protocol; found by
    /// ConfigGrammarFuzzTests — an earlier version put it first).
    @Test func legacyProtocolJoinsTheNetOptionsInReadingOrder() throws {
        let after = try load("resource r { net { timeout 50; } protocol A; \(Self.twoHosts) }")
        #expect(after.resources[0].sections.net.map(\.name) == ["timeout", "protocol"])
        #expect(after.resources[0].sections.net[1].value == "A")
        let before = try load("resource r { protocol A; net { timeout 50; } \(Self.twoHosts) }")
        #expect(before.resources[0].sections.net.map(\.name) == ["protocol", "timeout"])
    }

    @Test func syncerOptionsMoveToTheirSections() throws {
        let config = try load("resource r { syncer { al-extents 300; verify-alg md5; cpu-mask 3; } \(Self.twoHosts) }")
        let sections = config.resources[0].sections
        #expect(sections.disk.map(\.name) == ["al-extents"])
        #expect(sections.net.map(\.name) == ["verify-alg"])
        #expect(sections.resource.map(\.name) == ["cpu-mask"])
    }

    @Test func diskBlockSplitsBackingAndResyncOptions() throws {
        let config = try load("resource r { disk { c-fill-target 1M; md-flushes no; resync-rate 10M; no-disk-flushes; } \(Self.twoHosts) }")
        let sections = config.resources[0].sections
        #expect(sections.disk.map(\.name) == ["md-flushes", "disk-flushes"])
        #expect(sections.disk.map(\.value) == ["no", "no"])
        #expect(sections.peerDevice.map(\.name) == ["c-fill-target", "resync-rate"])
    }

    @Test func booleanBareKeywordMeansYes() throws {
        let config = try load("resource r { net { allow-two-primaries; always-asbp no; } \(Self.twoHosts) }")
        #expect(config.resources[0].sections.net.map(\.value) == ["yes", "no"])
    }

    @Test(arguments: [
        ("resync-rate 40M", true), ("resync-rate 8G", true), ("resync-rate 9G", false), ("resync-rate 0", false),
        ("timeout 600", true), ("timeout 601", false), ("c-fill-target 512M", true), ("c-fill-target 513M", false),
        ("al-extents 66", true), ("al-extents 67", true), ("al-extents 65534", true), ("sndbuf-size 10M", true),  // (al-extents: read as drbdadm reads it; `up` checks its range)
        ("sndbuf-size 11M", false), ("ko-count 0", true), ("ko-count 201", false), ("ping-timeout 0", false),
    ])
    func optionRanges(option: String, valid: Bool) {
        let section = option.hasPrefix("resync") || option.hasPrefix("c-") || option.hasPrefix("al-") ? "disk" : "net"
        let problem = error("resource r { \(section) { \(option); } \(Self.twoHosts) }")
        #expect((problem == nil) == valid, "\(option): \(String(describing: problem))")
        if let problem { #expect(problem.message.contains("range") || problem.message.contains("too")) }
    }

    @Test func everyOptionHasAKnownSectionAndDefaultsAreValid() {
        for definition in OptionTable.all {
            #expect(OptionTable.definition(definition.name, in: definition.section) != nil)
            if let value = definition.defaultValue, !value.isEmpty, definition.section != .disk || definition.name != "resync-after" {
                if case .failure(let error) = OptionValueParser.check(definition, value: value) {
                    Issue.record("default of \(definition.name) is invalid: \(error.message)")
                }
            }
        }
    }

    @Test func numbersWithSuffixes() {
        #expect(OptionValueParser.number("40M", unitBytes: 1024) == 40960)
        #expect(OptionValueParser.number("1M", unitBytes: 512) == 2048)
        #expect(OptionValueParser.number("512k", unitBytes: 1) == 524_288)
        #expect(OptionValueParser.number("8s", unitBytes: 512) == 8)
        #expect(OptionValueParser.number("-1", unitBytes: 1) == -1)
        #expect(OptionValueParser.number("12X", unitBytes: 1) == nil)
        #expect(OptionValueParser.number("", unitBytes: 1) == nil)
        #expect(OptionValueParser.number("99999999999999999999G", unitBytes: 1) == nil)
    }

    @Test func volumesExplicitAndPerHost() throws {
        let config = try load("""
            resource r {
              volume 0 { device minor 1; disk /dev/a; meta-disk internal; }
              volume 1 { device /dev/drbd2; disk /dev/b; meta-disk /dev/m [3]; disk { on-io-error pass_on; } }
              on a { address 10.0.0.1:7788; }
              on b { address 10.0.0.2:7788; volume 1 { disk none; } }
            }
            """)
        let resource = config.resources[0]
        #expect(resource.volumes.map(\.number) == [0, 1])
        #expect(resource.volumes[1].metaDisk == .external(path: "/dev/m", index: 3))
        #expect(resource.volumes[1].device?.minor == 2)
        #expect(resource.volumes[1].diskOptions.map(\.value) == ["pass_on"])
        let onB = try NodeResolver(nodeName: "b").volumes(of: resource, in: config)
        #expect(onB[1].disk == DiskSpec.none)
        #expect(onB[1].device.minor == 2)
        #expect(onB[1].diskOption("on-io-error") == "pass_on")
        #expect(onB[0].diskOption("al-extents") == "1237")
    }

    @Test func nodeIDsDerivedAsDrbdadmDoes() throws {
        // drbdadm 9.22 orders the two hosts by a CRC32C of the address text (observed).
        let a = try load("resource r { device minor 1; disk /dev/x; meta-disk internal; on a { address 10.0.0.1:7788; } on b { address 10.0.0.2:7788; } }")
        #expect(a.resources[0].hosts.map(\.nodeID) == [0, 1])
        let b = try load("resource r { device minor 1; disk /dev/x; meta-disk internal; on a { address 172.16.0.1:7788; } on b { address 172.16.0.2:7788; } }")
        #expect(b.resources[0].hosts.map(\.nodeID) == [1, 0])
        let explicit = try load("resource r { device minor 1; disk /dev/x; meta-disk internal; on a { node-id 5; address 10.0.0.1:7788; } on b { node-id 2; address 10.0.0.2:7788; } }")
        #expect(explicit.resources[0].hosts.map(\.nodeID) == [5, 2])
    }

    @Test func ipv6AndFloatingAddresses() throws {
        let config = try load("resource r { device minor 1; disk /dev/x; meta-disk internal; on a { address ipv6 [fd00::1]:7000; } floating 10.0.0.2:7001 { } }")
        #expect(config.resources[0].hosts[0].address?.description == "ipv6 [fd00::1]:7000")
        #expect(config.resources[0].hosts[1].floatingAddress?.description == "ipv4 10.0.0.2:7001")
    }

    @Test func includesWithGlobsRelativeToTheIncludingFile() throws {
        let directory = "/tmp/replica-include-test-\(UInt32.random(in: 0...UInt32.max))"
        try FileManagerShim.makeDirectory(directory + "/conf.d")
        defer { FileManagerShim.remove(directory) }
        try FileManagerShim.write(directory + "/main.conf", "include \"conf.d/*.res\";\ncommon { net { protocol B; } }\n")
        try FileManagerShim.write(directory + "/conf.d/b.res", "resource b { device minor 2; disk /dev/b; meta-disk internal; on x { address 10.0.0.1:7789; } on y { address 10.0.0.2:7789; } }\n")
        try FileManagerShim.write(directory + "/conf.d/a.res", "resource a { device minor 1; disk /dev/a; meta-disk internal; on x { address 10.0.0.1:7788; } on y { address 10.0.0.2:7788; } }\n")
        let config = try ConfigBuilder.load(path: directory + "/main.conf")
        #expect(config.resources.map(\.name) == ["a", "b"])
        #expect(config.resources[0].location.file == directory + "/conf.d/a.res")
    }

    @Test func includeLoopIsReported() throws {
        let directory = "/tmp/replica-include-loop-\(UInt32.random(in: 0...UInt32.max))"
        try FileManagerShim.makeDirectory(directory)
        defer { FileManagerShim.remove(directory) }
        try FileManagerShim.write(directory + "/a.conf", "include \"a.conf\";\n")
        #expect(throws: ConfigError.self) { try ConfigBuilder.load(path: directory + "/a.conf") }
    }

    @Test(arguments: [
        ("resource r { net { foo 1; } \(twoHosts) }", 1, 20, "unknown option 'foo'"),
        ("resource r {\n net { timeout 700; }\n \(twoHosts) }", 2, 16, "too big"),
        ("resource r { on a { address 1.2.3.4:7788; ", 1, 43, "unterminated block"),
        ("resource r { net { protocol C } }", 1, 31, "expected ';'"),
        ("resource r { net { protocol Q; } \(twoHosts) }", 1, 29, "not a valid value"),
        ("resourc r { }", 1, 1, "unknown keyword 'resourc'"),
        ("resource r { volume 0 { device minor 1; disk /dev/a; meta-disk internal; } volume 0 { device minor 2; disk /dev/b; meta-disk internal; } on a { address 10.0.0.1:7788; } on b { address 10.0.0.2:7788; } }", 1, 76, "volume 0 is defined twice"),
        ("resource r { on a { device minor 1; disk /dev/x; meta-disk internal; address 10.0.0.1:7788; } }", 1, 14, "'node-id' keyword missing"),
        ("resource r { net { shared-secret \"x; } }", 1, 34, "unterminated string"),
        ("resource address { \(twoHosts) }", 1, 10, "is a keyword"),
        ("resource r { net { cpu-mask a,b; } }", 1, 20, "unknown option"),
        ("resource r { options { cpu-mask a,b; } \(twoHosts) }", 1, 33, "contains ','"),
        ("resource r { device /dev/sdz; disk /dev/x; meta-disk internal; on a { address 10.0.0.1:7788; } on b { address 10.0.0.2:7788; } }", 1, 21, "cannot derive a minor"),
        ("global { usage-count maybe; }", 1, 22, "usage-count takes yes, no or ask"),
        ("global { } global { }", 1, 12, "a second 'global'"),
        ("resource r { \(twoHosts) }\nresource r { \(twoHosts) }", 3, 1, "defined twice"),
        ("resource r { on a { address 10.0.0.1; } }", 1, 29, "has no ':PORT'"),
        ("}", 1, 1, "unexpected '}'"),
        ("resource r { device minor 0; disk /dev/x; flexible-meta-disk /dev/vg/meta [0]; \(twoHosts) }", 1, 75, "'flexible-meta-disk' takes no index"),
        ("resource r { device minor 0; disk /dev/x; flexible-meta-disk /dev/vg/meta[0]; \(twoHosts) }", 1, 62, "'flexible-meta-disk' takes no index"),
    ] as [(String, Int, Int, String)])
    func errorsNameLineColumnAndRule(text: String, line: Int, column: Int, message: String) {
        let problem = error(text)
        #expect(problem?.location.file == "test.res")
        #expect(problem?.location.line == line, "\(String(describing: problem))")
        #expect(problem?.location.column == column, "\(String(describing: problem))")
        #expect(problem?.message.contains(message) == true, "\(String(describing: problem))")
    }

    @Test func duplicateMinorOnOneHostAcrossResources() {
        let problem = error("""
            resource r { on a { device minor 1; disk /dev/x; meta-disk internal; address 1.2.3.4:7788; } on b { device minor 1; disk /dev/y; meta-disk internal; address 1.2.3.5:7788; } }
            resource s { on a { device minor 1; disk /dev/z; meta-disk internal; address 1.2.3.4:7789; } on b { device minor 2; disk /dev/w; meta-disk internal; address 1.2.3.5:7789; } }
            """)
        #expect(problem?.message.contains("minor 1 is used twice on host a") == true)
        #expect(problem?.location.line == 2)
    }

    @Test func duplicateAddressAcrossResources() {
        let problem = error("""
            resource r { on a { device minor 1; disk /dev/x; meta-disk internal; address 1.2.3.4:7788; } on b { device minor 1; disk /dev/y; meta-disk internal; address 1.2.3.5:7788; } }
            resource s { on a { device minor 2; disk /dev/z; meta-disk internal; address 1.2.3.4:7788; } on b { device minor 2; disk /dev/w; meta-disk internal; address 1.2.3.5:7789; } }
            """)
        #expect(problem?.message.contains("address ipv4 1.2.3.4:7788 is used twice") == true)
    }

    @Test func missingHostForThisNodeIsNamed() throws {
        let config = try load("resource r { \(Self.twoHosts) }")
        #expect(throws: ConfigError.self) { try NodeResolver(nodeName: "zed").volumes(of: config.resources[0], in: config) }
        do {
            _ = try NodeResolver(nodeName: "zed").host(in: config.resources[0])
        } catch {
            #expect(error.message.contains("no 'on zed' section"))
            #expect(error.location.line == 1)
        }
    }

    @Test func warningsForWhatDrbdadmAcceptsButIsSuspicious() throws {
        let config = try load("resource r { net { protocol C; protocol A; } disk { resync-after nowhere; } \(Self.twoHosts) }")
        #expect(config.warnings.count == 2)
    }
}
