import Foundation
import Testing
@testable import ReplicaCore

/// No option is silently ignored: every option the parser accepts is honoured or refused at
/// `up` with its place in the file and the reason.
@Suite("Option support")
struct OptionSupportTests {
    func resource(_ body: String, hosts: String = "") throws -> (Configuration, ResourceSpec) {
        let text = """
            resource r0 {
              device minor 0; disk /tmp/none.img; meta-disk internal;
            \(body)
              on alpha { address 127.0.0.1:7789; }
              on beta { address 127.0.0.2:7789; }
            \(hosts)
            }
            """
        let configuration = try ConfigBuilder.load(text: text, file: "/etc/replica/r0.res")
        return (configuration, try #require(configuration.resource(named: "r0")))
    }

    func refusal(_ body: String, hosts: String = "") throws -> ConfigError? {
        let (configuration, resource) = try resource(body, hosts: hosts)
        do {
            try ResourceSupport.check(resource, in: configuration, node: "alpha")
            return nil
        } catch {
            return error
        }
    }

    /// The refusal at `up` of resource `name` of `text` (which must read without error).
    func refusalAtUp(_ text: String, resource name: String) throws -> ConfigError {
        let configuration = try ConfigBuilder.load(text: text, file: "/etc/replica/\(name).res")
        let resource = try #require(configuration.resource(named: name))
        return try #require(throws: ConfigError.self) { try ResourceSupport.check(resource, in: configuration, node: "alpha") }
    }

    /// `stacked-timeouts` is a bare flag to drbdadm: read (and dumped bare, after the startup
    /// section's other options, not at all alone), refused at `up` with its place; written with
    /// a value, a parse error.
    @Test func stackedTimeoutsIsAFlagReadDumpedAndRefusedAtUp() throws {
        let error = try #require(try refusal("  startup { wfc-timeout 5; stacked-timeouts; }"))
        #expect(error.message.contains("stacked resources") && error.location.line == 3 && error.location.column == 28, "\(error)")
        let (withOther, _) = try resource("  startup { stacked-timeouts; wfc-timeout 5; }")
        let dump = ConfigDumper(nodeName: "alpha").dump(withOther)
        let timeout = try #require(dump.range(of: "wfc-timeout"))
        let flag = try #require(dump.range(of: "        stacked-timeouts;\n    }"))
        #expect(timeout.upperBound < flag.lowerBound, "\(dump)")
        let (alone, _) = try resource("  startup { stacked-timeouts; }")
        #expect(!ConfigDumper(nodeName: "alpha").dump(alone).contains("startup"))
        #expect(throws: ConfigError.self) { try resource("  startup { stacked-timeouts no; }") }
    }

    @Test func everyOptionThePaserAcceptsHasARule() {
        for definition in OptionTable.all {
            #expect(OptionSupport.rule(for: definition.name, in: definition.section) != nil, "\(definition.section.rawValue) \(definition.name) has no rule")
        }
    }

    /// (DRBD 9's auto-promote yes is the one default Replica does not follow: it behaves as
    /// DRBD 8.4, which has no auto-promote; written, it is refused.)
    @Test func everyOptionsDefaultIsHonoured() {
        for definition in OptionTable.all where definition.section != .proxy && definition.name != "auto-promote" {
            guard let value = definition.defaultValue else { continue }
            let setting = OptionSetting(name: definition.name, value: value, location: SourceLocation(file: "f", line: 1, column: 1))
            #expect(OptionSupport.refusal(of: setting, in: definition.section) == nil, "the default of \(definition.name) (\(value)) is refused")
        }
    }

    /// TLS is honoured as a set: `tls yes` with a certificate, a key and a way to verify the
    /// peer; any `tls-*` file option without `tls yes` is refused (the link would be plain).
    @Test func tlsOptionsAreCheckedAsASet() throws {
        let files = "tls-certificate \"/etc/replica/alpha.pem\"; tls-privkey \"/etc/replica/alpha.key\";"
        let pin = String(repeating: "AB:", count: 31) + "AB"
        #expect(try refusal("  net { tls yes; \(files) tls-ca \"/etc/replica/ca.pem\"; }") == nil)
        #expect(try refusal("  net { tls yes; \(files) tls-peer-fingerprint \"\(pin)\"; }") == nil)
        #expect(try refusal("  net { tls yes; \(files) tls-peer-fingerprint \"sha256:\(String(repeating: "0f", count: 32))\"; }") == nil)
        let cases: [(String, String)] = [
            ("  net { tls yes; tls-privkey \"/k.pem\"; tls-ca \"/ca.pem\"; }", "tls yes without tls-certificate"),
            ("  net { tls yes; tls-certificate \"/c.pem\"; tls-ca \"/ca.pem\"; }", "tls yes without tls-privkey"),
            ("  net { tls yes; \(files) }", "tls yes without tls-ca or tls-peer-fingerprint"),
            ("  net { tls-ca \"/ca.pem\"; }", "tls-ca without tls yes"),
            ("  net { tls no; \(files) }", "tls-certificate without tls yes"),
            ("  net { tls yes; \(files) tls-peer-fingerprint \"AB:CD\"; }", "tls-peer-fingerprint 'AB:CD' is not a SHA-256 fingerprint"),
        ]
        for (body, message) in cases {
            let error = try #require(try refusal(body), "\(body) was accepted")
            #expect(error.message.hasPrefix(message), "\(error)")
            #expect(error.location.line == 3, "\(error)")
        }
    }

    /// `cram-hmac-alg` with `shared-secret` is honoured (the transport authenticates the peer);
    /// an unknown hash, or one option without the other, is refused at its place.
    @Test func peerAuthenticationIsHonouredAsAPairWithAKnownHash() throws {
        #expect(try refusal("  net { cram-hmac-alg sha1;\n    shared-secret \"secret\"; }") == nil)
        let unknown = try #require(try refusal("  net { cram-hmac-alg whirlpool;\n    shared-secret \"secret\"; }"))
        #expect(unknown.location == SourceLocation(file: "/etc/replica/r0.res", line: 3, column: 9), "\(unknown)")
        #expect(unknown.description.contains("cram-hmac-alg whirlpool: unknown hash for peer authentication"), "\(unknown)")
        let lonelyHash = try #require(try refusal("  net { cram-hmac-alg sha256; }"))
        #expect(lonelyHash.location == SourceLocation(file: "/etc/replica/r0.res", line: 3, column: 9), "\(lonelyHash)")
        #expect(lonelyHash.description.contains("cram-hmac-alg sha256 without a shared-secret"), "\(lonelyHash)")
        let lonelySecret = try #require(try refusal("  net {\n    shared-secret \"secret\"; }"))
        #expect(lonelySecret.location == SourceLocation(file: "/etc/replica/r0.res", line: 4, column: 5), "\(lonelySecret)")
        #expect(lonelySecret.description.contains("shared-secret without cram-hmac-alg"), "\(lonelySecret)")
    }

    @Test(arguments: [
        ("  net { data-integrity-alg crc32c; }", "data-integrity-alg"),
        ("  net { fencing resource-only; }", "fencing"),
        ("  net { tls yes; }", "tls"),
        ("  net { tls-keyring replica; }", "tls-keyring"),
        ("  net { verify-alg sha1; }", "verify-alg"),
        ("  net { transport rdma; }", "transport"),
        ("  net { on-congestion pull-ahead; protocol A; }", "on-congestion"),
        ("  disk { disk-flushes no; }", "disk-flushes"),
        ("  disk { al-updates no; }", "al-updates"),
        ("  options { quorum majority; }", "quorum"),
        ("  options { auto-promote yes; }", "auto-promote"),
        ("  handlers { before-resync-target \"/usr/lib/drbd/snapshot-resync-target-lvm.sh\"; }", "before-resync-target"),
        ("  startup { become-primary-on alpha; }", "become-primary-on"),
    ])
    func aSettingReplicaDoesNotHonourIsRefused(body: String, option: String) throws {
        let error = try #require(try refusal(body), "\(option) was accepted")
        #expect(error.message.hasPrefix(option), "\(error)")
        #expect(error.location.line == 3, "\(error)")
    }

    @Test func honouredSettingsPass() throws {
        let body = """
              net { protocol B; ping-int 5; max-buffers 8000; after-sb-0pri discard-zero-changes; always-asbp yes; use-rle no; fencing dont-care; }
              disk { on-io-error pass_on; resync-rate 100M; c-plan-ahead 0; al-extents 3389; }
              options { max-io-depth 64; }
              startup { wfc-timeout 15; degr-wfc-timeout 60; }
              handlers { split-brain "/bin/true"; fence-peer "/usr/lib/drbd/crm-fence-peer.sh"; }
            """
        #expect(try refusal(body) == nil)
    }

    @Test func aThirdHostIsRefused() throws {
        let text = """
            resource r0 {
              device minor 0; disk /tmp/none.img; meta-disk internal;
              on alpha { address 127.0.0.1:7789; node-id 0; }
              on beta { address 127.0.0.2:7789; node-id 1; }
              on gamma { address 127.0.0.3:7789; node-id 2; }
              connection-mesh { hosts alpha beta gamma; }
            }
            """
        let error = try refusalAtUp(text, resource: "r0")
        #expect(error.message.contains("3 hosts"), "\(error)")
        #expect(error.location.line == 5)
    }

    /// drbdadm's dump takes any number for al-extents (drbdsetup checks it later): read, and
    /// refused at `up` outside DRBD's range, with its place; inside, honoured. And with a
    /// connection block, two hosts without node-ids are refused (drbdadm asks for them).
    @Test func alExtentsOutsideDRBDsRangeAreReadButRefusedAtUp() throws {
        for (value, refused) in [("66", true), ("65535", true), ("-1", true), ("67", false), ("65534", false), ("1237", false)] {
            let error = try refusal("  disk { al-extents \(value); }")
            #expect((error != nil) == refused, "al-extents \(value): \(String(describing: error))")
            if let error { #expect(error.message.contains("al-extents must be in 67..65534") && error.location.line == 3, "\(error)") }
        }
        let missing = try #require(throws: ConfigError.self) {
            try ConfigBuilder.load(text: "resource r0 {\n  device minor 0; disk /x; meta-disk internal;\n  on alpha { address 127.0.0.1:7789; }\n  on beta { address 127.0.0.2:7789; }\n  connection { host alpha; host beta; }\n}\n", file: "/etc/replica/r0.res")
        }
        #expect(missing.location.line == 3 && missing.message.contains("'node-id' keyword missing"), "\(missing)")
    }

    @Test func aSingleHostIsReadButRefusedAtUp() throws {
        // drbdadm accepts one host without an address (there is no peer to reach); Replica
        // reads it (dump) and refuses to run it, naming the host's section.
        let text = """
            resource solo {
              device minor 0; disk /tmp/none.img; meta-disk internal;
              on alpha { node-id 0; }
            }
            """
        let error = try refusalAtUp(text, resource: "solo")
        #expect(error.message.contains("single host"), "\(error)")
        #expect(error.location.line == 3 && error.location.column == 3, "\(error.location)")
    }

    @Test func aPathThroughDRBDProxyIsReadButRefusedAtUp() throws {
        let text = """
            resource px {
              device minor 0; disk /tmp/none.img; meta-disk internal;
              on alpha { node-id 0; address 10.0.0.1:7789; }
              on beta { node-id 1; address 10.0.0.2:7789; }
              connection {
                host alpha address 127.0.0.1:7789 via proxy on proxy-a { inside 127.0.0.1:7788; outside 192.168.1.1:7788; }
                host beta address 127.0.0.2:7789 via proxy on proxy-b { inside 127.0.0.2:7788; outside 192.168.1.2:7788; }
              }
            }
            """
        let configuration = try ConfigBuilder.load(text: text, file: "/etc/replica/px.res")
        let resource = try #require(configuration.resource(named: "px"))
        #expect(resource.connections[0].hosts[0].proxy?.outside?.host == "192.168.1.1")
        let error = try #require(throws: ConfigError.self) { try ResourceSupport.check(resource, in: configuration, node: "alpha") }
        #expect(error.message.contains("DRBD Proxy is not supported"), "\(error)")
        #expect(error.location.line == 6, "\(error.location)")
    }

    @Test func floatingSectionsAreReadButRefusedAtUp() throws {
        // Both forms, DRBD 8.4's `floating ADDRESS;` and the block: dumped, refused at up.
        for form in ["floating 10.0.0.1:7789;", "floating 10.0.0.1:7789 { }"] {
            let text = """
                resource fl {
                  device minor 0; disk /tmp/none.img; meta-disk internal;
                  \(form)
                  floating 10.0.0.2:7789;
                }
                """
            let configuration = try ConfigBuilder.load(text: text, file: "/etc/replica/fl.res")
            let resource = try #require(configuration.resource(named: "fl"))
            #expect(resource.hosts.map(\.floatingAddress?.host) == ["10.0.0.1", "10.0.0.2"])
            let error = try #require(throws: ConfigError.self) { try ResourceSupport.check(resource, in: configuration, node: "alpha") }
            #expect(error.message.contains("IP address"), "\(error)")
            #expect(error.location.line == 3 && error.location.column == 3, "\(error.location)")
        }
    }

    @Test func aProxyPluginBlockIsReadButRefusedAtUp() throws {
        let text = """
            resource px {
              device minor 0; disk /tmp/none.img; meta-disk internal;
              proxy { plugin { zlib level 9; } }
              on alpha { node-id 0; address 10.0.0.1:7789; }
              on beta { node-id 1; address 10.0.0.2:7789; }
            }
            """
        let configuration = try ConfigBuilder.load(text: text, file: "/etc/replica/px.res")
        let resource = try #require(configuration.resource(named: "px"))
        #expect(resource.sections.proxy.first?.blockLines == ["zlib level 9"])
        let error = try #require(throws: ConfigError.self) { try ResourceSupport.check(resource, in: configuration, node: "alpha") }
        #expect(error.message.contains("plugin { }") && error.message.contains("DRBD Proxy"), "\(error)")
        #expect(error.location.line == 3 && error.location.column == 11, "\(error.location)")
    }

    @Test func aMeshNamesItsHostsByTheirShortNames() throws {
        // drbdadm matches `hosts n1 n2;` to `on n1.example.home`: the mesh's options apply there.
        let text = """
            resource ms {
              device minor 0; disk /tmp/none.img; meta-disk internal;
              on n1.example.home { node-id 0; address 127.0.0.1:7789; }
              on n2.example.home { node-id 1; address 127.0.0.2:7789; }
              connection-mesh { hosts n1 n2; net { protocol B; } }
            }
            """
        let configuration = try ConfigBuilder.load(text: text, file: "/etc/replica/ms.res")
        let resource = try #require(configuration.resource(named: "ms"))
        let net = NodeResolver(nodeName: "n1.example.home").netOptions(of: resource, in: configuration)
        #expect(net.last { $0.name == "protocol" }?.value == "B")
        #expect(throws: ConfigError.self) {
            try ConfigBuilder.load(text: text.replacingOccurrences(of: "hosts n1 n2", with: "hosts n1 n3"), file: "/etc/replica/ms.res")
        }
    }

    @Test func connectionOptionsOfThisNodeAreTheResources() throws {
        // (With a connection block every host gives its node-id, as drbdadm asks.)
        let text = """
            resource r0 {
              device minor 0; disk /tmp/none.img; meta-disk internal;
              on alpha { node-id 0; address 127.0.0.1:7789; }
              on beta { node-id 1; address 127.0.0.2:7789; }
              connection { host alpha; host beta; net { protocol A; max-buffers 4096; } }
            }
            """
        let configuration = try ConfigBuilder.load(text: text, file: "/etc/replica/r0.res")
        let resource = try #require(configuration.resource(named: "r0"))
        let net = NodeResolver(nodeName: "alpha").netOptions(of: resource, in: configuration)
        #expect(net.last { $0.name == "protocol" }?.value == "A")
        #expect(LinkLimits(net: net).queueBytes == 4096 * 4096)
    }
}

/// docs/COMPATIBILITY.md names every option in its table of what Replica honours.
@Suite("Compatibility notes")
struct CompatibilityDocumentTests {
    @Test func theTableNamesEveryOption() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/COMPATIBILITY.md"), encoding: .utf8)
        let table = try #require(text.range(of: "## What Replica honours")).upperBound
        let section = text[table...]
        for definition in OptionTable.all where definition.section != .proxy {
            #expect(section.contains("`\(definition.name)`"), "docs/COMPATIBILITY.md does not name \(definition.name)")
        }
    }
}
