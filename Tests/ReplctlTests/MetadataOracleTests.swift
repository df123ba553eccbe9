import Foundation
import Testing

/// `replctl create-md / dump-md / get-gi / show-gi / set-gi` against `drbdmeta` on sparse files.
@Suite("Meta-data oracle: drbdmeta", .enabled(if: Tools.haveDRBDTools, "needs drbd-utils (drbdmeta) and a built replctl"))
struct MetadataOracleTests {
    /// A resource file for node `alpha` with one volume on `disk`, meta-data as `metaDisk`.
    func resource(_ directory: String, disk: String, metaDisk: String) throws -> String {
        let path = directory + "/r.res"
        try """
            resource r0 {
              on alpha { device minor 0; disk \(disk); meta-disk \(metaDisk); address 127.0.0.1:7789; }
              on beta { device minor 0; disk /dev/unused; meta-disk internal; address 127.0.0.2:7789; }
            }
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func replctl(_ config: String, _ arguments: [String]) throws -> CommandResult {
        try Tools.replctl([arguments[0], "-c", config, "--node", "alpha"] + arguments.dropFirst())
    }

    /// The `drbdmeta` device and index arguments for a meta-disk form.
    struct Placement: CustomStringConvertible, Sendable {
        var name: String
        var dataBytes: Int64
        var metaBytes: Int64?  // nil = internal
        var index: Int?

        var description: String { name }
    }

    static let placements: [Placement] = [
        Placement(name: "internal 64 MiB", dataBytes: 64 << 20),
        Placement(name: "internal 1 GiB", dataBytes: 1 << 30),
        Placement(name: "internal 100 GiB", dataBytes: 100 << 30),
        Placement(name: "external flexible 1 GiB", dataBytes: 1 << 30, metaBytes: 16 << 20),
        Placement(name: "external indexed [1] 1 GiB", dataBytes: 1 << 30, metaBytes: 300 << 20, index: 1),
    ]

    struct Setup {
        var directory: String
        var config: String
        var device: String  // what drbdmeta is pointed at
        var index: String  // drbdmeta's index argument
        var dataSectors: Int64
    }

    func setUp(_ placement: Placement) throws -> Setup {
        let directory = try Tools.temporaryDirectory("md")
        let data = try Tools.sparseFile(directory, "data.img", bytes: placement.dataBytes)
        guard let metaBytes = placement.metaBytes else {
            let config = try resource(directory, disk: data, metaDisk: "internal")
            let sectors = placement.dataBytes == 1 << 30 ? Int64(2_097_016) : (placement.dataBytes == 64 << 20 ? 130_992 : 209_708_408)
            return Setup(directory: directory, config: config, device: data, index: "internal", dataSectors: sectors)
        }
        let meta = try Tools.sparseFile(directory, "meta.img", bytes: metaBytes)
        let form = placement.index.map { "\(meta) [\($0)]" } ?? meta
        let config = try resource(directory, disk: data, metaDisk: form)
        return Setup(directory: directory, config: config, device: meta, index: placement.index.map(String.init) ?? "flex-external",
                     dataSectors: placement.dataBytes / 512)
    }

    /// drbdmeta 9.22 prints `flags 0x00000000` in v08 dumps whatever the superblock holds (a
    /// known bug); replctl prints the real flags. Everything else must be identical.
    func comparable(_ dump: String) -> [String] {
        Tools.withoutComments(dump).map { $0.hasPrefix("    flags 0x") ? "    flags (compared separately)" : $0 }
    }

    @Test(arguments: placements)
    func createdByReplctlReadByDrbdmeta(placement: Placement) throws {
        let setup = try setUp(placement)
        defer { try? FileManager.default.removeItem(atPath: setup.directory) }
        let created = try replctl(setup.config, ["create-md", "r0"])
        #expect(created.status == 0, "\(created.stderr)")
        let theirs = try Tools.drbdmeta(setup.device, setup.index, ["dump-md"])
        #expect(theirs.status == 0, "\(theirs.stderr)")
        #expect(theirs.stdout.contains("0x0000000000000004; 0x0000000000000000; 0x0000000000000000; 0x0000000000000000;"))
        #expect(theirs.stdout.contains("# al-extents 257;"))
        #expect(theirs.stdout.contains("la-size-sect 0;"))
        let ours = try replctl(setup.config, ["dump-md", "r0"])
        #expect(ours.status == 0, "\(ours.stderr)")
        #expect(comparable(ours.stdout) == comparable(theirs.stdout))
        #expect(ours.stdout.contains("    flags 0x00000080;"))
        #expect(try Tools.drbdmeta(setup.device, setup.index, ["get-gi"]).stdout == (try replctl(setup.config, ["get-gi", "r0"])).stdout)
        #expect(try Tools.drbdmeta(setup.device, setup.index, ["dstate"]).stdout == (try replctl(setup.config, ["dstate", "r0"])).stdout)

        // Existing meta-data is not overwritten without --force.
        let again = try replctl(setup.config, ["create-md", "r0"])
        #expect(again.status == 20)
        #expect(again.stderr.contains("valid v08 meta-data found"))
        #expect(try replctl(setup.config, ["create-md", "--force", "r0"]).status == 0)
    }

    @Test(arguments: placements)
    func writtenByDrbdmetaReadByReplctl(placement: Placement) throws {
        let setup = try setUp(placement)
        defer { try? FileManager.default.removeItem(atPath: setup.directory) }
        #expect(try Tools.drbdmeta(setup.device, setup.index, ["create-md"], input: "yes\nyes\n").status == 0)
        // restore-md a dump with UUIDs, flags, sizes and a scattered bitmap.
        let words = Int((setup.dataSectors + 8 * 64 - 1) / (8 * 64))
        var bitmap = [UInt64](repeating: 0, count: (words * 8 + 4095) / 4096 * 512)
        bitmap[0] = 0xFF
        bitmap[1] = 0x8000_0000_0000_0001
        for i in 2..<12 { bitmap[i] = ~0 }
        bitmap[words / 2] = 0x0123_4567_89AB_CDEF
        for i in (words - 40)..<(words - 3) { bitmap[i] = ~0 }
        bitmap[words - 1] = 1
        let body = bitmap.map { String(format: "0x%016llX;", $0) }.joined(separator: "\n")
        let dump = """
            version "v08";
            uuid {
                0xAAAAAAAAAAAAAAAB; 0xBBBBBBBBBBBBBBBA; 0xCCCCCCCCCCCCCCCC; 0xDDDDDDDDDDDDDDDD;
                flags 0x00000091;
            }
            la-size-sect \(setup.dataSectors);
            bm-byte-per-bit 4096;
            device-uuid 0x1122334455667788;
            la-peer-max-bio-size 1048576;
            al-stripes 1;
            al-stripe-size-4k 8;
            bm {
            \(body)
            }

            """
        let dumpFile = setup.directory + "/restore.txt"
        try dump.write(toFile: dumpFile, atomically: true, encoding: .utf8)
        let restored = try Tools.drbdmeta(setup.device, setup.index, ["restore-md", dumpFile], input: String(repeating: "yes\n", count: 4))
        #expect(restored.status == 0, "\(restored.stderr)")

        let theirs = try Tools.drbdmeta(setup.device, setup.index, ["dump-md"])
        let ours = try replctl(setup.config, ["dump-md", "r0"])
        #expect(ours.status == 0, "\(ours.stderr)")
        #expect(comparable(ours.stdout) == comparable(theirs.stdout))
        #expect(ours.stdout.contains("    flags 0x00000091;"))
        #expect(ours.stdout.contains("la-size-sect \(setup.dataSectors);"))
        for command in ["get-gi", "show-gi", "dstate"] {
            let mine = try replctl(setup.config, [command, "r0"])
            let drbd = try Tools.drbdmeta(setup.device, setup.index, [command])
            #expect(mine.stdout == drbd.stdout, "\(command) differs")
        }

        // set-gi both ways.
        let set = try replctl(setup.config, ["set-gi", "r0", "1:2:3:4:1:0:1:0:0:0:1"])
        #expect(set.status == 0)
        #expect(set.stdout == "previously AAAAAAAAAAAAAAAB:BBBBBBBBBBBBBBBA:CCCCCCCCCCCCCCCC:DDDDDDDDDDDDDDDD:1:1:0:0:0:0:0\nset GI to  0000000000000001:0000000000000002:0000000000000003:0000000000000004:1:0:1:0:0:0:1\n")
        #expect(try Tools.drbdmeta(setup.device, setup.index, ["get-gi"]).stdout == "0000000000000001:0000000000000002:0000000000000003:0000000000000004:1:0:1:0:0:0:1\n")
        #expect(try Tools.drbdmeta(setup.device, setup.index, ["set-gi", "::C:::1"]).status == 0)
        #expect(try replctl(setup.config, ["get-gi", "r0"]).stdout == "0000000000000001:0000000000000002:000000000000000C:0000000000000004:1:1:1:0:0:0:1\n")
        #expect(try replctl(setup.config, ["set-gi", "r0", "1:2:3:4:7"]).stderr.contains("'7' is not 0 or 1."))
    }

    @Test func tooSmallDeviceIsRefusedNamingSizes() throws {
        let directory = try Tools.temporaryDirectory("small")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = try Tools.sparseFile(directory, "tiny.img", bytes: 40960)
        let config = try resource(directory, disk: data, metaDisk: "internal")
        let result = try replctl(config, ["create-md", "r0"])
        #expect(result.status == 20)
        #expect(result.stderr.contains("device too small: 40960 bytes"))
    }

    @Test func damagedMetadataIsReportedWithWhereAndWhat() throws {
        let directory = try Tools.temporaryDirectory("damaged")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = try Tools.sparseFile(directory, "data.img", bytes: 64 << 20)
        let config = try resource(directory, disk: data, metaDisk: "internal")
        let blank = try replctl(config, ["dump-md", "r0"])
        #expect(blank.status == 20)
        #expect(blank.stderr.contains("no valid v08 meta-data at byte offset 67104768"))
        #expect(try replctl(config, ["create-md", "r0"]).status == 0)
        // Corrupt the magic.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: data))
        try handle.seek(toOffset: 67_104_768 + 0x3C)
        handle.write(Data([0x12, 0x34, 0x56, 0x78]))
        try handle.close()
        let bad = try replctl(config, ["get-gi", "r0"])
        #expect(bad.status == 20)
        #expect(bad.stderr.contains("bad magic 0x12345678 at offset 0x3C"))
        // Unclean (8.4 attached) magic: dump-md refuses without --force, marks the dump with it.
        let unclean = try FileHandle(forUpdating: URL(fileURLWithPath: data))
        try unclean.seek(toOffset: 67_104_768 + 0x3C)
        unclean.write(Data([0x83, 0x74, 0x02, 0x6C]))
        try unclean.close()
        let refused = try replctl(config, ["dump-md", "r0"])
        #expect(refused.status == 20 && refused.stderr.contains("apply-al"))
        let forced = try replctl(config, ["dump-md", "--force", "r0"])
        let theirs = try Tools.drbdmeta(data, "internal", ["dump-md"])
        #expect(forced.stdout.contains("This_is_an_unclean_meta_data_dump._Don't_trust_the_bitmap."))
        #expect(comparable(forced.stdout) == comparable(theirs.stdout))
        // apply-al makes it clean again, and drbdmeta agrees.
        #expect(try replctl(config, ["apply-al", "r0"]).status == 0)
        #expect(!(try Tools.drbdmeta(data, "internal", ["dump-md"])).stdout.contains("unclean"))
    }

    @Test func diskNoneHasNoMetadata() throws {
        let directory = try Tools.temporaryDirectory("diskless")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try resource(directory, disk: "none", metaDisk: "internal")
        let result = try replctl(config, ["create-md", "r0"])
        #expect(result.status == 20 && result.stderr.contains("diskless"))
    }

    @Test func thisNodeMissingFromTheResourceIsNamed() throws {
        let directory = try Tools.temporaryDirectory("nonode")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try resource(directory, disk: "/dev/null", metaDisk: "internal")
        let result = try Tools.replctl(["create-md", "-c", config, "--node", "gamma", "r0"])
        #expect(result.status == 10)
        #expect(result.stderr.contains("\(config):1:1: resource r0 has no 'on gamma' section"))
    }
}
