import Foundation
import Testing

/// `replctl dump` against `drbdadm dump` on resource files generated from the grammar
/// (``ResourceFileGenerator``): where drbdadm accepts a file, replctl must accept it and dump it
/// identically; where drbdadm refuses it, replctl must refuse it too. A difference is minimized
/// (lines taken out while it persists) and reported with its seed.
/// Seeds: `CONFIG_FUZZ_FIRST` (default 1) and `CONFIG_FUZZ_COUNT` (default 150); campaigns
/// on fresh ranges: `scripts/config-fuzz.sh FIRST COUNT`.
@Suite("Configuration oracle: files generated from the grammar", .enabled(if: Tools.haveDRBDTools, "needs drbd-utils (drbdadm) and a built replctl"))
struct ConfigGrammarFuzzTests {
    static let seeds: [UInt64] = {
        let environment = ProcessInfo.processInfo.environment
        let first = environment["CONFIG_FUZZ_FIRST"].flatMap(UInt64.init) ?? 1
        let count = environment["CONFIG_FUZZ_COUNT"].flatMap(UInt64.init) ?? 150
        return Array(first..<(first + count))
    }()

    /// How the two tools see a file: both accept and dump the same, or the difference.
    static func difference(_ text: String, in directory: String) throws -> String? {
        let path = directory + "/generated.res"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let theirs = try Tools.run(Tools.drbdadm!, ["-c", path, "dump"])
        let ours = try Tools.replctl(["dump", "-c", path, "--node", Tools.nodeName])
        switch (theirs.status == 0, ours.status == 0) {
        case (true, true):
            return Tools.withoutComments(ours.stdout) == Tools.withoutComments(theirs.stdout) ? nil : "dumps differ"
        case (true, false):
            return "drbdadm accepts, replctl refuses: \(ours.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
        case (false, true):
            return "drbdadm refuses (\(theirs.stderr.split(separator: "\n").last { !$0.contains("modinfo") } ?? "")), replctl accepts"
        case (false, false):
            return nil
        }
    }

    /// `text` with lines taken out, one at a time, while the same kind of difference persists.
    static func minimized(_ text: String, kind: String, in directory: String) throws -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var index = 0
        let wanted = Self.shape(kind)
        while index < lines.count {
            var candidate = lines
            candidate.remove(at: index)
            if let found = try difference(candidate.joined(separator: "\n"), in: directory), Self.shape(found) == wanted {
                lines = candidate
            } else {
                index += 1
            }
        }
        return lines.joined(separator: "\n")
    }

    /// A difference without its file, places, names and numbers: what must stay the same while
    /// lines are taken out.
    static func shape(_ difference: String) -> String {
        var text = difference
        for pattern in [#"/[^\s:']+"#, #"'[^']*'"#, #"[0-9]+"#, #"in resource [^,]+"#, #"on [^ ]+ \{"#] {
            text = text.replacingOccurrences(of: pattern, with: "_", options: .regularExpression)
        }
        return text
    }

    @Test(arguments: seeds)
    func generatedFileIsReadAsDrbdadmReadsIt(seed: UInt64) throws {
        let directory = NSTemporaryDirectory() + "replica-fuzz-\(getpid())-\(seed)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = ResourceFileGenerator(seed: seed)
        let text = generator.file()
        guard let found = try Self.difference(text, in: directory) else { return }
        let small = try Self.minimized(text, kind: found, in: directory)
        Issue.record("seed \(seed): \(found)\n--- minimized:\n\(small)\n--- why there: \(try Self.difference(small, in: directory) ?? "")")
    }
}
