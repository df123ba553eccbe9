import ArgumentParser
import ReplicaCore

/// `replctl dump [RES|all]`: the configuration, normalized as `drbdadm dump` prints it.
struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the configuration normalized, as drbdadm dump does.")

    @OptionGroup var options: ConfigOptions

    @Argument(help: "Resource names, or 'all' (default).")
    var resources: [String] = []

    func run() throws {
        try runReporting {
            let configuration = try options.load()
            let dumper = ConfigDumper(nodeName: options.nodeName)
            if resources.isEmpty || resources == ["all"] {
                FileOutput.standardOutput(dumper.dump(configuration))
                return
            }
            for name in resources where configuration.resource(named: name) == nil {
                throw CommandFailure(message: "'\(name)' not defined in your config (\(options.config)).", code: ExitCodes.configuration)
            }
            FileOutput.standardOutput(dumper.dump(configuration, only: resources))
        }
    }
}
