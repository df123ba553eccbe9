import Foundation
import Testing

/// Real NBD clients (nbdinfo, nbdcopy, qemu-io, fio, nbdfuse + losetup + mkfs.ext4 + mount)
/// against the exports of two real daemons, driven by `scripts/nbd-integration.sh`.
@Suite("NBD exports with real clients", .serialized,
       .enabled(if: Tools.replctl != nil && ["nbdinfo", "nbdcopy", "qemu-io", "fio", "python3"].allSatisfy { Tools.which($0) != nil },
                "needs libnbd-bin, qemu-utils, fio (scripts/install-deps.sh) and a built replctl"))
struct NBDIntegrationTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/nbd-integration.sh").path

    func run(_ test: String) throws {
        let result = try Tools.run("/bin/bash", [Self.script, Tools.replctl!, test])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("PASS \(test)"), "\(result.stdout)\n\(result.stderr)")
    }

    @Test("nbdinfo (size, flags, Secondary refused with ERR_POLICY), nbdcopy 256 MiB in and out, qemu-io patterns, fio verify=crc32c; both disks equal")
    func clients() throws { try run("clients") }

    @Test("bad requests over a raw socket get the spec's errors, malformed ones end that connection only, the daemon keeps serving")
    func badRequests() throws { try run("badrequests") }

    @Test("base:allocation: holes and data of the Primary's sparse disk through libnbd (REQ_ONE too), nbdinfo --map and qemu-img map; nbdcopy and qemu-img convert copy sparsely, byte for byte")
    func allocationMap() throws { try run("map") }

    @Test("NBD_FLAG_CAN_MULTI_CONN holds: four connections see each other's completed writes; a FLUSH on one makes every completed write durable on both nodes (fdatasync on each daemon while it runs, strace) and both disks hold every byte",
          .enabled(if: Tools.which("strace") != nil, "needs strace (scripts/install-deps.sh)"))
    func multiConnection() throws { try run("multiconn") }

    @Test("the TCP export of nbd-address: nbdinfo, nbdcopy in over TCP and out over the Unix socket, the Secondary refused, secondary refused while a TCP client is connected")
    func tcpExport() throws { try run("tcp") }

    @Test("NBD over TLS (nbd-tls require): a plain client gets NBD_REP_ERR_TLS_REQD for all but STARTTLS and ABORT; nbdinfo, nbdcopy, libnbd, qemu-img and qemu-io over TLS with client certificates; data on both nodes; a client certificate from another CA refused; the Unix socket stays plain; TLS-PSK (nbd-tls-psk) with TLS offered (nbd-tls on: a plain client served in clear) with libnbd and qemu's tls-creds-psk, a wrong key and an unknown identity refused",
          .enabled(if: Tools.which("openssl") != nil && Tools.which("qemu-io") != nil, "needs openssl and qemu-utils"))
    func tlsExport() throws { try run("tls") }

    @Test("down closes a connected client cleanly and removes the export socket")
    func downClosesClients() throws { try run("down") }

    @Test("the seed's workflow: ext4 made and mounted on alpha through nbdfuse + loop, secondary refused while open, the same files mounted on beta",
          .enabled(if: getuid() == 0 && Tools.which("nbdfuse") != nil && Tools.which("losetup") != nil && FileManager.default.fileExists(atPath: "/dev/fuse"),
                   "needs root, nbdfuse, losetup and /dev/fuse"))
    func filesystem() throws { try run("filesystem") }
}
