import Foundation
import Testing

/// Two real daemons, each in its own network namespace joined by a veth pair, driven by
/// `scripts/netns-integration.sh` (root only; CI runs as root).
@Suite("Two daemons in network namespaces", .serialized,
       .enabled(if: getuid() == 0 && Tools.which("ip") != nil && Tools.replctl != nil, "needs root, iproute2 and a built replctl"))
struct NetnsIntegrationTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/netns-integration.sh").path

    func run(_ test: String) throws {
        let result = try Tools.run("/bin/bash", [Self.script, Tools.replctl!, test])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("PASS \(test)"), "\(result.stdout)\n\(result.stderr)")
    }

    @Test("the seed's setup ends Connected Primary/Secondary UpToDate/UpToDate")
    func seedSetup() throws { try run("seed") }

    @Test("mutual TLS 1.3 (CA, and pinned fingerprints): a full sync and writes arrive byte for byte, and a capture of the link shows a written pattern only without TLS",
          .enabled(if: Tools.which("tcpdump") != nil && Tools.which("openssl") != nil, "needs tcpdump and openssl (scripts/install-deps.sh)"))
    func tlsReplication() throws { try run("tls") }

    @Test("TLS refusals with the reason in both logs and nothing on the peer's disk: wrong CA, expired, another host, pin mismatch, no cipher suite in common (tls-ciphersuites), plain peer to TLS node and back; a wrong key, a missing file, no verification, an unknown cipher suite refused at up; garbage during the handshake leaves the daemon serving",
          .enabled(if: Tools.which("openssl") != nil, "needs openssl"))
    func tlsRefusals() throws { try run("tlsrefusals") }

    @Test("full sync of 256 MiB of existing data, then 256 MiB of random writes, under protocols A, B and C")
    func fullSyncAndWritesUnderEachProtocol() throws { try run("protocols") }

    @Test("garbage, truncated and oversized frames to the listeners leave the daemons serving")
    func garbageFrames() throws { try run("garbage") }

    @Test("a veth cut during writes: writes go on, and the resync sends only what changed (≤ 1.05 × dirtied)")
    func linkCut() throws { try run("cut") }

    @Test("a frozen peer (SIGSTOP) is declared lost within ping-int + ping-timeout; the Primary keeps serving and resyncs after")
    func frozenPeer() throws { try run("freeze") }

    @Test("kill -9 of the Primary during protocol C writes: every acknowledged write on both disks, only activity-log extents resynced")
    func primaryCrash() throws { try run("crashprimary") }

    @Test("kill -9 of the Secondary during writes: it catches up from the Primary's bitmap")
    func secondaryCrash() throws { try run("crashsecondary") }

    @Test("detach and attach of a connected Secondary (a bitmap resync of what it missed) and of a Primary (served by its peer: remote reads)")
    func detachAndAttach() throws { try run("diskless") }

    @Test("a node configured 'disk none' connects Diskless and, as Primary, reads and writes through its peer")
    func diskNone() throws { try run("disknone") }

    @Test("the seed's split brain: both StandAlone, split-brain handler run, manual recovery with --discard-my-data")
    func splitBrainManualRecovery() throws { try run("splitbrain") }

    @Test("after-sb-0pri/1pri/2pri policies on produced split brains: the expected victim's changes are overwritten")
    func splitBrainPolicies() throws { try run("sbpolicies") }

    @Test("unrelated data (disks initialised apart) is refused: both StandAlone")
    func unrelatedData() throws { try run("unrelated") }
}
