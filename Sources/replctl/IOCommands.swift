import ArgumentParser
import Foundation

/// `replctl write RES --offset N --input FILE`: write a file's bytes through the Primary
/// (a debugging aid and the demo's data path until the NBD export is there).
struct WriteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "write", abstract: "Write a file into the replicated volume at an offset (Primary only; flushed).")
    @OptionGroup var options: DaemonOptions
    @Option(help: "Byte offset (multiple of 512).") var offset: Int64
    @Option(help: "File to write (its size must be a multiple of 512).") var input: String
    @Argument var resource: String

    func run() throws {
        try runReporting {
            guard let data = FileManager.default.contents(atPath: input) else { throw CommandFailure(message: "cannot read \(input)", code: 1) }
            var position = 0
            while position < data.count {
                let chunk = data[position..<min(position + (1 << 20), data.count)]
                let request = ControlRequest(command: "write", resource: resource, offset: offset + Int64(position), data: Data(chunk).base64EncodedString())
                guard let response = DaemonClient.send(request, runDirectory: options.runDirectory) else {
                    throw CommandFailure(message: "no replctl daemon answers in \(options.runDirectory)", code: 1)
                }
                if response.exitCode != 0 { throw CommandFailure(message: response.error, code: response.exitCode) }
                position += chunk.count
            }
        }
    }
}

/// `replctl read RES --offset N --length L --output FILE`.
struct ReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "read", abstract: "Read bytes of the replicated volume into a file (Primary only).")
    @OptionGroup var options: DaemonOptions
    @Option(help: "Byte offset (multiple of 512).") var offset: Int64
    @Option(help: "Bytes to read (multiple of 512).") var length: Int
    @Option(help: "File to write the bytes to.") var output: String
    @Argument var resource: String

    func run() throws {
        try runReporting {
            var result = Data()
            while result.count < length {
                let count = min(1 << 20, length - result.count)
                let request = ControlRequest(command: "read", resource: resource, offset: offset + Int64(result.count), length: count)
                guard let response = DaemonClient.send(request, runDirectory: options.runDirectory) else {
                    throw CommandFailure(message: "no replctl daemon answers in \(options.runDirectory)", code: 1)
                }
                if response.exitCode != 0 { throw CommandFailure(message: response.error, code: response.exitCode) }
                guard let bytes = Data(base64Encoded: response.output) else { throw CommandFailure(message: "malformed read answer", code: 1) }
                result += bytes
            }
            try result.write(to: URL(fileURLWithPath: output))
        }
    }
}
