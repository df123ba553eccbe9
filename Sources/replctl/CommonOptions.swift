import ArgumentParser
import ReplicaCore

#if canImport(Glibc)
import Glibc
#endif

/// Options every command that reads the configuration takes.
struct ConfigOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("config")], help: "Configuration file.")
    var config: String = "/etc/replica/replica.conf"

    @Option(name: .customLong("node"), help: "This node's name (default: REPLICA_NODE, else uname -n).")
    var node: String?

    @Option(name: .customLong("run-dir"), help: "Run directory of this node's daemon (control socket, log).")
    var runDirectory: String = "/run/replica"

    /// The node name: `--node`, then `REPLICA_NODE`, then `uname -n`.
    var nodeName: String {
        if let node { return node }
        if let env = getenv("REPLICA_NODE"), let name = String(validatingCString: env), !name.isEmpty { return name }
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.nodename) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Loads and checks the configuration, turning errors into exit code 10.
    func load() throws -> Configuration {
        do {
            let configuration = try ConfigBuilder.load(path: config)
            for warning in configuration.warnings { FileOutput.standardError("replctl: warning: \(warning)\n") }
            return configuration
        } catch {
            throw CommandFailure(message: error.description, code: ExitCodes.configuration)
        }
    }
}

/// Exit codes of replctl, documented in `replctl --help`.
enum ExitCodes {
    static let configuration: Int32 = 10
    static let stateRefused: Int32 = 11
    static let metadata: Int32 = 20
}

/// An error that ends the command with a message on standard error and an exit code.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var code: Int32
    var description: String { message }
}

/// Runs `body`, printing a failure as `replctl: message` and exiting with its code.
func runReporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let failure as CommandFailure {
        FileOutput.standardError("replctl: \(failure.message)\n")
        throw ExitCode(failure.code)
    }
}

/// Writes to the standard streams without buffering surprises.
enum FileOutput {
    static func standardOutput(_ text: String) { writeAll(1, text) }

    static func standardError(_ text: String) { writeAll(2, text) }

    private static func writeAll(_ descriptor: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
