import Foundation
import Testing

/// The daemon's life cycle and bounds with real daemons on loopback, driven by
/// `scripts/daemon-integration.sh` (root for the mount of the meta-data test; CI runs as root).
@Suite("Daemon life cycle and bounds", .serialized,
       .enabled(if: getuid() == 0 && Tools.replctl != nil && Tools.which("fio") != nil, "needs root, fio and a built replctl"))
struct DaemonIntegrationTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/daemon-integration.sh").path

    func run(_ test: String) throws {
        let result = try Tools.run("/bin/bash", [Self.script, Tools.replctl!, test])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("PASS \(test)"), "\(result.stdout)\n\(result.stderr)")
    }

    @Test("make install, then the installed replctl run by name through PATH from another directory starts its daemon")
    func install() throws { try run("install") }

    @Test("only the configured peer: connections from another address are closed before anything is read and logged once a minute per address; the peer replicates as before")
    func strangers() throws { try run("strangers") }

    @Test("peer authentication (cram-hmac-alg, shared-secret): the same secret replicates; a wrong secret, a secret on one side only or different hashes leave both nodes StandAlone with the reason in both logs and nothing replicated; an unknown hash or one option alone is refused at up at its place")
    func auth() throws { try run("auth") }

    @Test("replctl tls-check prints what is presented and expected (the fingerprint as openssl prints it) and exits 10 for another host's certificate, an expired one, a wrong key, a missing file",
          .enabled(if: Tools.which("openssl") != nil, "needs openssl"))
    func tlsCheck() throws { try run("tlscheck") }

    @Test("Prometheus metrics at metrics-address (resource file) and up --metrics-address, parsed by prometheus_client and equal to status --json; 404/405/400; a second address refused with its place; off by default",
          .enabled(if: Tools.pythonModule("prometheus_client"), "needs python3-prometheus-client (scripts/install-deps.sh)"))
    func metrics() throws { try run("metrics") }

    @Test("up/down 200 times against a connected peer: descriptors and threads the same before and after")
    func upDownLoop() throws { try run("updown") }

    @Test("three concurrent 'up' of one resource: one resource, one export, no error")
    func concurrentUp() throws { try run("concurrentup") }

    @Test("a resource with two volumes: each volume's data on both nodes, through its own NBD export")
    func twoVolumes() throws { try run("twovolumes") }

    @Test("a Secondary stopped for 60 s under writes: the Primary's queue stays bounded, writes wait (congested), memory flat; all data on both disks after")
    func frozenPeer() throws { try run("frozenpeer") }

    @Test("the meta-data device fills up: the disk is let go with the reason shown, a full sync is asked for and done at the next attach")
    func metadataDeviceFull() throws { try run("metadatafull") }
}
