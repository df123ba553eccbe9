import Foundation

/// The outcome of running a command.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Finds and runs the programs these tests drive: the built `replctl` and DRBD's own tools.
enum Tools {
    /// The `replctl` binary: `$REPLCTL`, else next to the test bundle.
    static let replctl: String? = {
        if let path = ProcessInfo.processInfo.environment["REPLCTL"], FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("replctl").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }()

    static let drbdadm = which("drbdadm")
    static let drbdmeta = which("drbdmeta")
    static var haveDRBDTools: Bool { drbdadm != nil && drbdmeta != nil && replctl != nil }

    static func which(_ name: String) -> String? {
        for directory in ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"] {
            let path = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// True when Debian's Python (`/usr/bin/python3`, where the python3-* packages install)
    /// imports `module`.
    static func pythonModule(_ module: String) -> Bool {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return false }
        return (try? run("/usr/bin/python3", ["-c", "import \(module)"]).status) == 0
    }

    /// This machine's node name (`uname -n`), which drbdadm matches `on` sections against.
    static let nodeName: String = {
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }()

    /// Runs `path` with `arguments`, feeding `input` on standard input.
    static func run(_ path: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "REPLICA_NODE")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        try process.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inPipe.fileHandleForWriting.close()
        // Read both pipes to the end before waiting, so a large output cannot block the child.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }

    static func replctl(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        try run(replctl!, arguments, environment: environment)
    }

    /// `drbdmeta --force 0 v08 DEVICE INDEX COMMAND...` (DRBD's tool needs --force on plain files).
    static func drbdmeta(_ device: String, _ index: String, _ command: [String], input: String? = nil) throws -> CommandResult {
        try run(drbdmeta!, ["--force", "0", "v08", device, index] + command, input: input)
    }

    /// Text without comment lines and trailing blanks, for comparing dumps "comments aside".
    static func withoutComments(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { String($0).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
    }

    /// A sparse file of `bytes` bytes in a fresh temporary directory.
    static func sparseFile(_ directory: String, _ name: String, bytes: Int64) throws -> String {
        let path = directory + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(bytes))
        try handle.close()
        return path
    }

    static func temporaryDirectory(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "replica-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The corpus folder of resource files.
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus").path

    static func corpusFiles(_ kind: String) -> [String] {
        let directory = corpus + "/" + kind
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".res") }.sorted().map { directory + "/" + $0 }
    }
}
