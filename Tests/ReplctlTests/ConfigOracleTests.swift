import Foundation
import Testing

/// `replctl dump` against `drbdadm dump` on the corpus of resource files.
@Suite("Configuration oracle: drbdadm dump", .enabled(if: Tools.haveDRBDTools, "needs drbd-utils (drbdadm) and a built replctl"))
struct ConfigOracleTests {
    @Test func corpusHasAtLeastTwentyFiveFiles() {
        #expect(Tools.corpusFiles("valid").count + Tools.corpusFiles("invalid").count >= 25)
        #expect(Tools.corpusFiles("valid").count >= 15)
        #expect(Tools.corpusFiles("invalid").count >= 10)
    }

    @Test(arguments: Tools.corpusFiles("valid"))
    func validFilesDumpAsDrbdadmDumps(path: String) throws {
        let theirs = try Tools.run(Tools.drbdadm!, ["-c", path, "dump"])
        #expect(theirs.status == 0, "drbdadm rejects \(path): \(theirs.stderr)")
        let ours = try Tools.replctl(["dump", "-c", path, "--node", Tools.nodeName])
        #expect(ours.status == 0, "replctl rejects \(path): \(ours.stderr)")
        #expect(Tools.withoutComments(ours.stdout) == Tools.withoutComments(theirs.stdout), "dump of \(path) differs")
    }

    @Test(arguments: Tools.corpusFiles("invalid"))
    func invalidFilesFailWithFileLineColumn(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let expectation = try #require(text.split(separator: "\n").first { $0.hasPrefix("# expect: ") })
        let parts = expectation.dropFirst("# expect: ".count).split(separator: " ", maxSplits: 1)
        let location = String(parts[0]), message = String(parts[1])
        let ours = try Tools.replctl(["dump", "-c", path, "--node", "nobody"])
        #expect(ours.status == 10, "\(path): exit \(ours.status), \(ours.stderr)")
        #expect(ours.stderr.contains("\(path):\(location): "), "\(path): \(ours.stderr)")
        #expect(ours.stderr.contains(message), "\(path): \(ours.stderr)")
        #expect(ours.stdout.isEmpty, "a rejected file printed a partial dump")
        if !text.contains("# drbdadm-accepts") {
            let theirs = try Tools.run(Tools.drbdadm!, ["-c", path, "dump"])
            #expect(theirs.status != 0, "drbdadm accepts \(path), replctl rejects it")
        }
    }

    @Test func dumpOfOneResourcePrintsOnlyThatResource() throws {
        let path = Tools.corpusFiles("valid").first { $0.hasSuffix("11-multiple-resources.res") }!
        let ours = try Tools.replctl(["dump", "-c", path, "--node", "a", "db"])
        #expect(ours.status == 0)
        #expect(ours.stdout.hasPrefix("# resource db on a: not ignored, not stacked\n"))
        #expect(!ours.stdout.contains("resource web"))
        #expect(!ours.stdout.contains("common {"))
        let missing = try Tools.replctl(["dump", "-c", path, "nope"])
        #expect(missing.status == 10 && missing.stderr.contains("'nope' not defined"))
    }

    @Test func nodeNameFromFlagEnvironmentOrUname() throws {
        let path = Tools.corpusFiles("valid").first { $0.hasSuffix("01-seed-two-nodes.res") }!
        let flag = try Tools.replctl(["dump", "-c", path, "--node", "node2"])
        #expect(flag.stdout.contains("# resource r0 on node2: not ignored, not stacked"))
        let env = try Tools.replctl(["dump", "-c", path], environment: ["REPLICA_NODE": "node1"])
        #expect(env.stdout.contains("# resource r0 on node1: not ignored"))
        let uname = try Tools.replctl(["dump", "-c", path])
        #expect(uname.stdout.contains("# resource r0 on \(Tools.nodeName): ignored"))
    }

    @Test func defaultConfigurationPathIsEtcReplica() throws {
        let result = try Tools.replctl(["dump"])
        if !FileManager.default.fileExists(atPath: "/etc/replica/replica.conf") {
            #expect(result.status == 10)
            #expect(result.stderr.contains("/etc/replica/replica.conf"))
        }
    }
}
