#if RDMA
import CReplicaIBVerbs
#endif

/// Whether this build carries the InfiniBand verbs transport, and which RDMA devices the
/// machine has. Built with the package trait `RDMA` (`swift build --traits RDMA`).
public enum RDMASupport {
    /// True when the package was built with the `RDMA` trait.
    public static var isCompiledIn: Bool {
        #if RDMA
        true
        #else
        false
        #endif
    }

    /// Names of the RDMA devices libibverbs sees (`ibv_get_device_list`); empty when the
    /// build has no RDMA support or the machine has no device.
    public static func deviceNames() -> [String] {
        #if RDMA
        var count: Int32 = 0
        guard let list = ibv_get_device_list(&count) else { return [] }
        defer { ibv_free_device_list(list) }
        var names: [String] = []
        for index in 0..<Int(count) {
            if let device = list[index], let name = ibv_get_device_name(device) {
                names.append(String(cString: name))
            }
        }
        return names
        #else
        return []
        #endif
    }
}
