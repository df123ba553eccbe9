/// Which options Replica honours, and why it refuses the others (docs/COMPATIBILITY.md).
public enum OptionSupport {
    /// Why `setting` (in `section`) is refused, or nil when Replica honours it.
    public static func refusal(of setting: OptionSetting, in section: OptionSection) -> String? {
        switch (section, setting.name) {
        case (.net, "cram-hmac-alg") where !setting.value.isEmpty, (.net, "shared-secret") where !setting.value.isEmpty:
            return "peer authentication is not supported by Replica yet: the connection would not be authenticated (remove the option, or wait for Replica's shared-secret support)"
        case (.net, "data-integrity-alg") where !setting.value.isEmpty:
            return "not supported by Replica yet: replicated data would not be checked on the wire"
        default:
            return nil
        }
    }
}
