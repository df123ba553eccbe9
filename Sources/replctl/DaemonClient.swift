#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation

/// Options of commands that talk to the node daemon.
struct DaemonOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions

    /// The run directory (`--run-dir`).
    var runDirectory: String { config.runDirectory }

    @Flag(help: "Print JSON.") var json = false
}

/// Sends requests to the daemon of this node, starting it when `up` finds none.
enum DaemonClient {
    static func send(_ request: ControlRequest, runDirectory: String) -> ControlResponse? {
        guard let fd = UnixSocket.connect(NodeDaemon.socketPath(runDirectory)) else { return nil }
        defer { close(fd) }
        guard let data = try? JSONEncoder.controlLine.encode(request) else { return nil }
        UnixSocket.write(fd, String(decoding: data, as: UTF8.self) + "\n")
        guard let line = UnixSocket.readLine(fd), let response = try? JSONDecoder().decode(ControlResponse.self, from: Data(line.utf8)) else {
            return ControlResponse(exitCode: 1, output: "", error: "the daemon sent no valid answer")
        }
        return response
    }

    /// Checks the configuration (errors with file:line:column) and starts the daemon when none answers.
    static func ensureDaemon(_ options: DaemonOptions) throws {
        try runReporting {
            _ = try options.config.load()
            if send(ControlRequest(command: "ping"), runDirectory: options.runDirectory) == nil {
                try startDaemon(options)
            }
        }
    }

    /// Starts `replctl daemon` in the background and waits until it answers.
    static func startDaemon(_ options: DaemonOptions) throws {
        try FileManager.default.createDirectory(atPath: options.runDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ownExecutable())
        let config = options.config.config.hasPrefix("/") ? options.config.config : FileManager.default.currentDirectoryPath + "/" + options.config.config
        process.arguments = ["daemon", "-c", config, "--node", options.config.nodeName, "--run-dir", options.runDirectory]
        let log = options.runDirectory + "/replctl.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 {
            if send(ControlRequest(command: "ping"), runDirectory: options.runDirectory) != nil { return }
            usleep(50_000)
        }
        throw CommandFailure(message: "the daemon did not start; see \(log)", code: 1)
    }

    /// Sends a request and prints the answer; exits with the daemon's code.
    static func run(_ command: String, _ resource: String?, flags: [String] = [], _ options: DaemonOptions) throws {
        try runReporting {
            var allFlags = flags
            if options.json { allFlags.append("json") }
            let request = ControlRequest(command: command, resource: resource, flags: allFlags, config: absolute(options.config.config))
            guard let response = send(request, runDirectory: options.runDirectory) else {
                throw CommandFailure(message: "no replctl daemon answers on \(NodeDaemon.socketPath(options.runDirectory)) (run 'replctl up RES')", code: 1)
            }
            FileOutput.standardOutput(response.output)
            if response.exitCode != 0 { throw CommandFailure(message: response.error, code: response.exitCode) }
        }
    }

    /// This program's own file, as the kernel knows it (`/proc/self/exe`): right however
    /// `replctl` was started — by name through PATH, by a relative path, from any directory.
    static func ownExecutable() throws -> String {
        do {
            return try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        } catch {
            throw CommandFailure(message: "cannot find this program's own file to start the daemon (/proc/self/exe: \(error))", code: 1)
        }
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
