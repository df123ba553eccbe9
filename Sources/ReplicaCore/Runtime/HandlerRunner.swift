import Foundation
import Logging

/// Runs the commands of a resource's `handlers { }` section when the engine asks
/// (``EngineEffect/callHandler(_:)``), as DRBD's helper calls do: `/bin/sh -c COMMAND` with
/// `DRBD_RESOURCE`, `DRBD_MINOR`, `DRBD_VOLUME` and `DRBD_CONF` in the environment, without
/// waiting for it; the exit status is logged.
public struct HandlerRunner: Sendable {
    /// Commands by handler name (`split-brain`, `pri-lost-after-sb`, ...).
    public var commands: [String: String]
    /// Environment for the handlers.
    public var environment: [String: String]

    /// A runner for `resource`'s volume `volume` with device minor `minor`.
    public init(commands: [String: String], resource: String, minor: Int, volume: Int, configurationFile: String) {
        self.commands = commands
        environment = ["DRBD_RESOURCE": resource, "DRBD_MINOR": String(minor), "DRBD_VOLUME": String(volume),
                       "DRBD_CONF": configurationFile]
    }

    /// No handlers.
    public static let none = HandlerRunner(commands: [:], resource: "", minor: 0, volume: 0, configurationFile: "")

    /// Starts the handler `name` if one is configured; logs what happened.
    public func call(_ name: String, logger: Logger) {
        guard var command = commands[name], !command.isEmpty else {
            logger.info("helper command: \(name) (no handler configured)")
            return
        }
        if command.count >= 2, command.hasPrefix("\""), command.hasSuffix("\"") { command = String(command.dropFirst().dropLast()) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.terminationHandler = { finished in
            logger.info("helper command: \(name) exit code \(finished.terminationStatus)")
        }
        do {
            try process.run()
            logger.info("helper command: \(command) \(name)")
        } catch {
            logger.error("helper command: \(name) could not start: \(error)")
        }
    }
}
