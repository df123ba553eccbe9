/// Whether Replica honours what a resource's configuration asks for: every option the parser
/// accepts is either honoured or refused when the resource is brought up, with its place in
/// the file and the reason (docs/COMPATIBILITY.md lists them). A user must never believe they
/// have a protection they do not have.
public enum ResourceSupport {
    /// Checks the options of `resource` as `node` runs it.
    /// - Throws: ``ConfigError`` at the first option Replica does not honour.
    public static func check(_ resource: ResourceSpec, in configuration: Configuration, node: String) throws(ConfigError) {
        let resolver = NodeResolver(nodeName: node)
        let common = configuration.common
        let sections: [(OptionSection, [OptionSetting])] = [
            (.resource, (common?.resource ?? []) + resource.sections.resource),
            (.net, resolver.netOptions(of: resource, in: configuration)),
            (.disk, (common?.disk ?? []) + resource.sections.disk),
            (.peerDevice, (common?.peerDevice ?? []) + resource.sections.peerDevice),
            (.startup, (common?.startup ?? []) + resource.sections.startup),
            (.handlers, (common?.handlers ?? []) + resource.sections.handlers),
        ]
        var volumeDisk: [OptionSetting] = []
        if let volumes = try? resolver.volumes(of: resource, in: configuration) {
            for volume in volumes { volumeDisk += volume.diskOptions }
        }
        for (section, settings) in sections + [(.disk, volumeDisk)] {
            for setting in settings {
                if let reason = OptionSupport.refusal(of: setting, in: section) {
                    throw ConfigError(setting.location, "\(setting.name) \(setting.value): \(reason)")
                }
            }
        }
    }
}
